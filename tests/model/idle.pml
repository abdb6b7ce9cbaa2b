/*
 * idle.pml - the idle protocol (lib/sched/idle.c) and the worker parker
 * (lib/sched/park.c), shared by park.pml and shutdown.pml.
 *
 * Spin explores interleavings under sequential consistency. Each Promela
 * statement below is one atomic step of the C code: one RMW, load or store
 * on a shared word, or one critical section step under a mutex. Comments
 * name the C lines (file:line at the time of writing) each step mirrors.
 *
 * The including model defines, before `#include "idle.pml"`:
 *   N               number of workers (cores)
 *   RING_LEN(i)     weft__ring_len(&rt->cores[i].ring) != 0, as one load
 *   INJECT_LEN      weft__inject_visible(&rt->inject), as one load: a push
 *                   becomes visible at once here (its count and its publish
 *                   are one step), the pusher's write before its notify
 * and every proctype that uses these inlines declares the locals
 *   byte nu, ns, core, old, prev, ok, i;  bool was, last;
 *
 * Not modelled: the driver park path (worker.c:365 weft__driver_park, the
 * PARK_DRIVER state with an eventfd in place of the futex): it is the same
 * handshake (CAS EMPTY->DRIVER or consume the notification; unpark exchanges
 * NOTIFIED and writes the eventfd when the old value was DRIVER), so the
 * futex path stands for both.
 */

#define EMPTY    0      /* PARK_EMPTY    runtime.h:57 */
#define PARKED   1      /* PARK_PARKED */
#define NOTIFIED 2      /* PARK_NOTIFIED */

#ifndef MAXSPUR
#define MAXSPUR 1       /* bounded spurious FUTEX_WAIT returns (whole run) */
#endif

/* idle->state = (unparked << 32) | searching, held as two fields that are
 * always read and written together in one atomic step. */
byte unparked = N;              /* idle.c:41 atomic_init(state, n << 32) */
byte searching = 0;
bit  idle_lock = 0;             /* idle->lock */
byte sleepers[N];               /* idle->sleepers, a stack under idle->lock */
byte nsleepers = 0;
bool sleeping[N];               /* rt->cores[i].sleeping */
byte pword[N];                  /* rt->workers[i].parker.state (EMPTY) */
bool fsleep[N];                 /* worker i is blocked inside FUTEX_WAIT */
byte spurious = 0;
bool shutdown = false;          /* rt->shutdown */

inline mutex_lock(l)   { atomic { l == 0 -> l = 1 } }
inline mutex_unlock(l) { l = 0 }

/* park.c:150-153 FUTEX_WAKE(1): wake the thread sleeping on the word.
 * BROKEN_NO_FUTEX_WAKE (a deliberately broken variant): the wake is lost. */
#ifdef BROKEN_NO_FUTEX_WAKE
inline futex_wake(w) { skip }
#else
inline futex_wake(w) { fsleep[w] = false }
#endif

/* park.c:175-181 unpark_word (via weft__parker_unpark, park.c:185-192). */
inline unpark(w) {
	atomic { old = pword[w]; pword[w] = NOTIFIED };   /* park.c:177 exchange */
	if
	:: old == PARKED -> futex_wake(w)                 /* park.c:178-179 */
	:: else -> skip
	fi
}

/*
 * idle.c:58-73, the part of weft__idle_notify after the read of `state`
 * (nu, ns hold the unparked / searching counts that read returned).
 */
inline notify_decide() {
	if
	:: ns != 0 || nu >= N -> skip                     /* idle.c:58-59 */
	:: else ->
		mutex_lock(idle_lock);                    /* idle.c:60 */
		ns = searching;                           /* idle.c:61 seq_cst load */
		if
		:: ns != 0 || nsleepers == 0 ->
			mutex_unlock(idle_lock)           /* idle.c:62-64 */
		:: else ->
			nsleepers--;                      /* idle.c:66 pop a sleeper */
			core = sleepers[nsleepers];
			atomic { unparked++; searching++ }  /* idle.c:67 fetch_add(UNPARK_ONE|1) */
			sleeping[core] = false;           /* idle.c:69 release store */
			mutex_unlock(idle_lock);          /* idle.c:70 */
			unpark(core)                      /* idle.c:73 registry_unpark -> parker */
		fi
	fi
}

/* idle.c:57 the read of `state`. The C code reads it with a seq_cst RMW
 * (fetch_add 0), which is totally ordered with the parker's RMW at
 * idle.c:97: under SC this is a plain atomic read. */
inline notify_read() { atomic { nu = unparked; ns = searching } }

/* idle.c:53-74 weft__idle_notify */
inline notify() { notify_read(); notify_decide() }

/* idle.c:76-83 weft__idle_try_search: a load, then a separate fetch_add. */
inline try_search() {
	atomic { nu = unparked; ns = searching };         /* idle.c:78 */
	if
	:: 2 * ns >= nu -> ok = 0                         /* idle.c:79-80 */
	:: else -> searching++; ok = 1                    /* idle.c:81 fetch_add(1) */
	fi
}

/* idle.c:85-91 weft__idle_end_search; last := this was the last searcher. */
inline end_search() {
	atomic { prev = searching; searching-- };         /* idle.c:87 fetch_sub(1) */
	assert(prev != 0);                                /* idle.c:88-89 underflow */
	last = (prev == 1)
}

/* idle.c:93-104 weft__idle_park; `was` = the worker was searching. */
inline idle_park(me) {
	mutex_lock(idle_lock);                            /* idle.c:96 */
	atomic {                                          /* idle.c:97-99 fetch_sub */
		prev = searching;
		unparked--;
		if :: was -> searching-- :: else -> skip fi
	};
	sleeping[me] = true;                              /* idle.c:100 */
	sleepers[nsleepers] = me; nsleepers++;            /* idle.c:101 */
	mutex_unlock(idle_lock);                          /* idle.c:102 */
	/* idle.c weft__idle_park's return: rescan if this was the last
	 * searcher or a non-searcher (a notify that read it unparked woke
	 * nobody). -DBROKEN_NONSEARCHER_NO_RESCAN: the last searcher only,
	 * as before (loses a wake with -DGATE, park.pml). */
#ifdef BROKEN_NONSEARCHER_NO_RESCAN
	last = was && prev == 1
#else
	last = !was || prev == 1
#endif
}

/* idle.c:106-116 weft__idle_notify_if_work: the last searcher's rescan. */
inline notify_if_work() {
	i = 0;
	do
	:: i < N ->
		if
		:: RING_LEN(i) -> notify(); break         /* idle.c:109-111 */
		:: else -> i++
		fi
	:: else ->
		if
		:: INJECT_LEN -> notify()                 /* idle.c:114-115 */
		:: else -> skip
		fi;
		break
	od
}

/* park.c:155-173 park_word on the worker's parker (park.c:183). */
inline park_word(me) {
	atomic {                                          /* park.c:157-159 CAS NOTIFIED->EMPTY */
		if
		:: pword[me] == NOTIFIED -> pword[me] = EMPTY; ok = 2
		:: else -> ok = 0
		fi
	};
	if
	:: ok == 2 -> skip
	:: else ->
		atomic {                                  /* park.c:160-161 CAS EMPTY->PARKED */
			if
			:: pword[me] == EMPTY -> pword[me] = PARKED; ok = 1
			:: else -> ok = 0
			fi
		};
		if
		:: ok == 0 ->                             /* park.c:163-165 consume */
			atomic { assert(pword[me] == NOTIFIED); pword[me] = EMPTY }
		:: else ->
			do
			:: /* park.c:168 FUTEX_WAIT(w, PARKED): sleep only if
			    * the word still is PARKED, checked atomically. */
				atomic { if :: pword[me] == PARKED -> fsleep[me] = true :: else -> skip fi };
				if
				:: !fsleep[me] -> skip            /* woken (or EAGAIN) */
				:: atomic { fsleep[me] && spurious < MAXSPUR ->
					spurious++; fsleep[me] = false }  /* spurious return */
#ifdef GATE
				/* the driver's watch (worker.c park, WEFT_WATCH_MS):
				 * a timed wake while the gate's ring holds work */
				:: atomic { fsleep[me] && gate_by != NOGATE && ring[gate_by] > 0 ->
					fsleep[me] = false; pword[me] = EMPTY; ok = 3 }
#endif
				fi;
				if :: ok == 3 -> break :: else -> skip fi;
				atomic {                          /* park.c:169-171 CAS NOTIFIED->EMPTY */
					if
					:: pword[me] == NOTIFIED -> pword[me] = EMPTY; ok = 2
					:: else -> skip
					fi
				};
				if :: ok == 2 -> break :: else -> skip fi
			od
		fi
	fi
}
