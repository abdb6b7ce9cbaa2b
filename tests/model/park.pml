/*
 * park.pml - no lost wakeup in weft's park/unpark protocol.
 *
 * Models lib/sched/idle.c (the searching counter, the sleepers stack, notify, the
 * last-searcher rescan), lib/sched/park.c (the parker word with futex semantics)
 * and the worker loop of lib/sched/worker.c (next_task, steal_work, run_task,
 * park) for N workers. A foreign thread pushes FOREIGN tasks into the inject
 * queue (worker.c:156-160 weft__schedule from outside a worker); the first
 * SPAWN tasks run spawn one child each onto the worker's ring
 * (worker.c:145 push_local + worker.c:153 notify - the disable_lifo_slot
 * path and the path of a task displaced from the LIFO slot; a task that
 * stays in the LIFO slot is run by its own worker before it can search or
 * park, worker.c:331, and needs no wake).
 *
 * Queues are counts: the ring (lib/sched/queue.c) and inject queue (lib/sched/inject.c)
 * are checked elsewhere (tests/queue, tests/fuzz/ring); here each pop,
 * steal and batch take is one atomic step. A steal's stolen tasks become
 * visible in the thief's ring only at its final tail store, but the thief is
 * then running and relays the search (worker.c:317-321) after that store,
 * so the atomic step loses nothing.
 *
 * Properties (see tests/model/CMakeLists.txt for how pan is run):
 *  - safety (-DSAFETY, pan -a is not needed): the monitor asserts there is
 *    no state where work is queued, every worker sleeps in FUTEX_WAIT and no
 *    push is between its enqueue and the end of its notify; an invalid end
 *    state (everyone blocked while a task was never run) is a lost wakeup
 *    too. Once every task has run, a shutdown thread (runtime.c:322-328:
 *    flag, unpark all) ends the workers, so a correct run terminates.
 *  - termination (-DNP, pan -l): no cycle, i.e. no execution that spins
 *    forever without finishing.
 *
 * Deliberately broken variants (must FAIL; registered as such in ctest):
 *  -DBROKEN_PLAIN_LOAD  notify reads `state` with a plain load instead of the
 *     RMW at idle.c:57. Under C11 a (non-RMW) load after the release store
 *     of the push may be satisfied before that store is visible to the
 *     parker (store->load reordering); modelled by taking the snapshot of
 *     `state` before the push becomes visible.
 *  -DBROKEN_NO_RESCAN   the last searcher parks without the rescan
 *     (worker.c:360-361 weft__idle_notify_if_work skipped).
 *  -DBROKEN_NO_FUTEX_WAKE  unpark sets NOTIFIED but never calls FUTEX_WAKE.
 */

#ifndef N
#define N 2
#endif
#ifndef FOREIGN
#define FOREIGN 2               /* tasks pushed by the foreign thread */
#endif
#ifndef SPAWN
#define SPAWN 1                 /* tasks that spawn a child when run */
#endif
#define TOTAL (FOREIGN + SPAWN)
#ifndef SEARCH_ROUNDS
#define SEARCH_ROUNDS 2         /* worker.c:38; the tests may lower it to 1 */
#endif

byte ring[N];                   /* tasks in rt->cores[i].ring */
byte inject = 0;                /* tasks in rt->inject */
byte ran = 0;                   /* tasks polled */
byte spawn_left = SPAWN;
byte inflight = 0;              /* pushes whose notify has not returned */

#define RING_LEN(x) (ring[x] != 0)
#define INJECT_LEN  (inject != 0)

/* -DGATE: the first task polled never returns (tests/stress
 * shutdown_pending's gate, a poll that outlasts everything): its worker
 * stays unparked and serves nothing more, so the others must run every
 * remaining task. The monitor then also flags a state where work is
 * queued - in the inject queue or in a ring, the gated worker's included
 * - and every other worker sleeps with no wake on its way. (The C code's
 * driver watch, not modelled, would find such a ring within
 * WEFT_WATCH_MS; the protocol must not need it. It did until the batch
 * notify: -DBROKEN_NO_BATCH_NOTIFY.) */
#define NOGATE 255
byte gate_by = NOGATE;

#include "idle.pml"


#if N == 2
#define ALL_FSLEEP (fsleep[0] && fsleep[1])
#define OTHERS_FSLEEP (gate_by != NOGATE && (gate_by == 0 || fsleep[0]) && (gate_by == 1 || fsleep[1]))
#define QUEUED (inject + ring[0] + ring[1] > 0)
#elif N == 3
#define ALL_FSLEEP (fsleep[0] && fsleep[1] && fsleep[2])
#define OTHERS_FSLEEP (gate_by != NOGATE && (gate_by == 0 || fsleep[0]) && (gate_by == 1 || fsleep[1]) && (gate_by == 2 || fsleep[2]))
#define QUEUED (inject + ring[0] + ring[1] + ring[2] > 0)
#else
#error "N must be 2 or 3"
#endif

/* A push (the atomic step `enq`) followed by weft__idle_notify. */
#ifdef BROKEN_PLAIN_LOAD
#define PUSH_AND_NOTIFY(enq) \
	atomic { inflight++; nu = unparked; ns = searching }; \
	atomic { enq }; \
	notify_decide(); \
	inflight--
#else
#define PUSH_AND_NOTIFY(enq) \
	atomic { enq; inflight++ }; \
	notify(); \
	inflight--
#endif

/* A worker's push to its own ring. -DGATED_LOCAL_NOTIFY: the notify may
 * be skipped (worker.c, notify_for_ring: a ring of short tasks wakes a
 * peer at most once per SHORT_NOTIFY_GAP_NS; which pushes that skips
 * depends on the clock, so here any of them may): the pusher serves its
 * own ring before it can search or park, so no task is stranded. */
#ifdef GATED_LOCAL_NOTIFY
#define LOCAL_PUSH_AND_NOTIFY(enq) \
	if \
	:: PUSH_AND_NOTIFY(enq) \
	:: atomic { enq } \
	fi
#else
#define LOCAL_PUSH_AND_NOTIFY(enq) PUSH_AND_NOTIFY(enq)
#endif

/* queue.c:166-183 weft__ring_pop_owner */
inline ring_pop(me) {
	atomic { if :: ring[me] > 0 -> ring[me]--; got = true :: else -> skip fi }
}

/* worker.c inject_batch: take len/n + 1 (at most len) from the inject
 * queue (weft__inject_pop_batch), run the first, push the rest to the own
 * ring - a second step: in between they are in the worker's hand, in
 * neither queue, and a parker's rescan sees them in neither - then notify
 * (weft__idle_notify, never skipped: t may be a poll that lasts), unless
 * searching (the relay at run_task covers a searcher's ring).
 * -DBROKEN_NO_BATCH_NOTIFY: no notify after the push (the code before). */
inline inject_batch(me) {
	atomic {
		if
		:: inject > 0 ->
			k = inject / N + 1;
			if :: k > inject -> k = inject :: else -> skip fi;
			inject = inject - k;
			k = k - 1;                        /* in hand */
			got = true
		:: else -> skip
		fi
	};
	if
	:: got && k > 0 ->
#ifdef BROKEN_NO_BATCH_NOTIFY
		atomic { ring[me] = ring[me] + k; k = 0 }
#else
		if
		:: is_searching -> atomic { ring[me] = ring[me] + k; k = 0 }
		:: else -> PUSH_AND_NOTIFY(ring[me] = ring[me] + k; k = 0)
		fi
#endif
	:: else -> skip
	fi
}

/* queue.c:185-243 weft__ring_steal: ceil(n/2) of src, one returned. */
inline steal(me, src) {
	atomic {
		if
		:: ring[src] > 0 ->
			k = ring[src] - ring[src] / 2;
			ring[src] = ring[src] - k;
			ring[me] = ring[me] + k - 1;
			got = true
		:: else -> skip
		fi
	}
}

proctype worker(byte me)
{
	byte nu, ns, core, old, prev, ok, i, j, k, v, round;
	bool was, last, got, is_searching = false;

	/* Purely local computation is folded into the atomic step of the
	 * shared access next to it, and dead temporaries are zeroed, so the
	 * state space holds only states that differ in what the C code could
	 * observe. */
loop:
	atomic {
		nu = 0; ns = 0; core = 0; old = 0; prev = 0; ok = 0; i = 0; j = 0;
		k = 0; v = 0; round = 0; was = false; last = false; got = false;
		if :: shutdown -> goto done :: else -> skip fi   /* worker.c:403 */
	};
	/* next_task, worker.c:259-277 (gqi inject-first: same two sources) */
	atomic { ring_pop(me); if :: got -> goto running :: else -> skip fi };  /* worker.c:274 */
	inject_batch(me); if :: got -> goto running :: else -> skip fi;  /* worker.c:276 */

	/* steal_work, worker.c:279-312 */
	if
	:: !is_searching ->
		try_search();                             /* worker.c:282 */
		if
		:: ok == 0 -> goto park                   /* worker.c:283 */
		:: else -> is_searching = true            /* worker.c:284 */
		fi
	:: else -> skip
	fi;
	do
	:: round < SEARCH_ROUNDS ->
#if N > 2
		select(k : 0 .. N - 1);                   /* worker.c:288 random start */
#endif
		j = 0;
		do
		:: j < N ->
			atomic {
				v = (k + j) % N; j++;
				if
				:: v != me ->
					steal(me, v);     /* worker.c:294 */
					if :: got -> goto running :: else -> skip fi
				:: else -> skip           /* worker.c:291 */
				fi
			}
		:: else -> break
		od;
		inject_batch(me); if :: got -> goto running :: else -> skip fi;  /* worker.c:303 */
		atomic { if :: shutdown -> break :: else -> round++ fi }  /* worker.c:306-308 */
	:: else -> break
	od;
	goto park;

running:	/* run_task, worker.c:314-348 */
	if
	:: is_searching ->
		is_searching = false;                     /* worker.c:318 */
		end_search();                             /* worker.c:319 */
		/* the relay: only with work in sight (idle.c weft__idle_relay;
		 * -DRELAY_ALWAYS: Tokio's unconditional notify) */
#ifdef RELAY_ALWAYS
		if :: last -> notify() :: else -> skip fi
#else
		if :: last -> notify_if_work() :: else -> skip fi
#endif
	:: else -> skip
	fi;
#ifdef GATE
	atomic {
		if
		:: gate_by == NOGATE -> gate_by = me; ran++; goto gated
		:: else -> skip
		fi
	};
#endif
	atomic {
		ran++;                                    /* the poll */
		if
		:: spawn_left > 0 -> spawn_left--; got = true
		:: else -> got = false
		fi
	};
	if
	:: got -> LOCAL_PUSH_AND_NOTIFY(ring[me]++)       /* worker.c:145 + 153 */
	:: else -> skip
	fi;
	goto loop;

park:	/* park, worker.c:350-380 */
	atomic {
		was = is_searching;                       /* worker.c:358 */
		is_searching = false                      /* worker.c:359 */
	};
	idle_park(me);                                    /* worker.c:360 */
#ifndef BROKEN_NO_RESCAN
	if :: last -> notify_if_work() :: else -> skip fi; /* worker.c:361 */
#endif
	atomic { nu = 0; ns = 0; core = 0; old = 0; prev = 0; i = 0; was = false; last = false };
	do
	:: shutdown -> goto done                          /* worker.c:363 */
	:: else ->
		park_word(me);                            /* worker.c:365-366 */
		atomic {
#ifdef GATE
			round = ok;                       /* 3: the watch's timed wake */
#endif
			ok = 0;
			if :: shutdown -> goto done :: else -> skip fi;  /* worker.c:367 */
			if
			:: !sleeping[me] -> break         /* worker.c:370-371 */
			:: else -> skip                   /* spurious / stale */
			fi
		};
#ifdef GATE
		/* worker.c park: the watch found the gate's ring unserved
		 * (steal_wanted): weft__idle_unpark_self, then search */
		if
		:: round == 3 ->
			round = 0;
			mutex_lock(idle_lock);
			if
			:: sleeping[me] ->
				i = 0;
				do
				:: sleepers[i] == me -> break
				:: else -> i++
				od;
				nsleepers--; sleepers[i] = sleepers[nsleepers];
				atomic { unparked++; searching++ };
				sleeping[me] = false
			:: else -> skip
			fi;
			mutex_unlock(idle_lock);
			i = 0;
			break
		:: else -> skip
		fi
#endif
	od;
	is_searching = true;                              /* worker.c:374 */
	goto loop;
done:
	skip;
#ifdef GATE
	goto end_ok;
gated:	/* in the gate's poll for good: a valid end state */
end_gate:
	(false);
end_ok:
	skip
#endif
}

/* An application thread: weft_spawn_poll from outside the runtime. */
proctype foreign()
{
	byte nu, ns, core, old, n = 0;
	do
	:: n < FOREIGN ->
		PUSH_AND_NOTIFY(inject++);                /* worker.c:156-160 */
		atomic { n++; nu = 0; ns = 0; core = 0; old = 0 }
	:: else -> break
	od
}

/* weft_runtime_shutdown once every task ran: runtime.c:322 and 325-328. */
proctype shutter()
{
	byte old, i = 0;
	ran == TOTAL;
	shutdown = true;
	do
	:: i < N -> unpark(i); i++
	:: else -> break
	od
}

/* No state where work is queued, every worker sleeps in FUTEX_WAIT and no
 * wake is on its way. */
active proctype monitor()
{
#ifdef GATE
end:	atomic { ((QUEUED && ALL_FSLEEP || QUEUED && OTHERS_FSLEEP) && inflight == 0 && !shutdown) -> assert(false) }
#else
end:	atomic { (QUEUED && ALL_FSLEEP && inflight == 0 && !shutdown) -> assert(false) }
#endif
}

init
{
	atomic {
		byte w = 0;
		do
		:: w < N -> run worker(w); w++
		:: else -> break
		od;
		run foreign();
		run shutter()
	}
}
