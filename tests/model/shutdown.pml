/*
 * shutdown.pml - weft_runtime_shutdown racing with spawns and wakes.
 *
 * Models lib/sched/runtime.c (weft_spawn_poll, the shutdown protocol), the task
 * state word of lib/sched/task.c (run, idle after PENDING, complete, wake by
 * value, shutdown cancel, references), lib/sched/owned.c (bind / close / first;
 * one shard: every shard follows the same lock protocol), lib/sched/inject.c
 * (push fails once closed), the worker loop of lib/sched/worker.c and the idle
 * protocol (idle.pml).
 *
 * Actors:
 *  - `spawner`, an application thread: weft_spawn_poll of task 0 (detached).
 *  - task 0's first poll spawns task 1 from the worker (weft_spawn_poll on
 *    a worker: bind, then the worker's ring + notify), hands a waker clone
 *    to `waker` and returns PENDING; its second poll returns READY. Task 1
 *    returns READY.
 *  - `waker`, an application thread: weft_waker_wake (by value) on task 0.
 *  - `shutter`: weft_runtime_shutdown(rt, WEFT_FOREVER), at any moment.
 *  - N workers.
 * Checked: drop runs exactly once for every task whose spawn was attempted
 * (run to completion, cancelled by the sweep, or refused with -ESHUTDOWN);
 * no reference count underflows, no use after free, every accepted task is
 * freed exactly once by the end; the sweep never finds a task RUNNING or
 * COMPLETE (runtime.c:382-383, task.c:171-173); every process terminates
 * (invalid end states and, with -DNP, cycles).
 *
 * Deliberately broken variant (must FAIL):
 *  -DBROKEN_NO_OWNED_CLOSE  shutdown does not close the owned list
 *     (runtime.c:324 skipped): a spawn can bind after the sweep and its task
 *     is never cancelled (its drop never runs).
 */

#ifndef N
#define N 1
#endif
#define T 2                     /* tasks */
#define SEARCH_ROUNDS 1         /* worker.c:38 is 2; one round suffices here */

/* task state word, task.h:14-24 (flags as fields, refs as a count) */
bool t_running[T], t_complete[T], t_notified[T], t_cancelled[T];
byte t_refs[T];
bool t_live[T];                 /* allocated and not yet freed */
byte t_freed[T];                /* times freed */
byte t_drops[T];                /* times drop(state) ran */
bool t_tried[T];                /* weft_spawn_poll was called for it */
bool t_listed[T];               /* on the owned list */
byte t_polls[T];

byte ring[N * T];               /* Notified entries of task t in core w's ring */
byte inj[T];                    /* ... in the inject queue */
bool inject_closed = false;
bool owned_closed = false;
bit  inject_lock = 0, owned_lock = 0;
bool waker_has = false;         /* the waker thread holds a clone of task 0's waker */
byte workers_done = 0;
bool swept = false;
bool spawner_done = false, waker_done = false;

#define RQ(w, t) ring[(w) * T + (t)]
#if N == 1
#define RING_LEN(x) (RQ(x, 0) + RQ(x, 1) != 0)
#else
#define RING_LEN(x) (RQ(x, 0) + RQ(x, 1) != 0)
#endif
#define INJECT_LEN (inj[0] + inj[1] != 0)

#include "idle.pml"

/* task.c:78-85 weft__task_unref (+ weft__task_free) */
inline unref(t) {
	atomic {
		assert(t_live[t] && t_refs[t] > 0);       /* task.c:81-82 underflow / UAF */
		t_refs[t]--;
		if :: t_refs[t] == 0 -> t_live[t] = false; t_freed[t]++ :: else -> skip fi
	}
}

/* task.c complete(): drop, leave the owned list, publish, unref2. */
inline complete(t) {
	atomic { assert(t_live[t]); t_drops[t]++ };       /* task.c drop */
	mutex_lock(owned_lock);                           /* owned.c weft__owned_remove */
	t_listed[t] = false;
	mutex_unlock(owned_lock);
	atomic { t_running[t] = false; t_complete[t] = true };  /* task.c weft__ts_complete */
	atomic {                                          /* task.c:119 unref2 */
		assert(t_live[t] && t_refs[t] >= 2);
		t_refs[t] = t_refs[t] - 2;
		if :: t_refs[t] == 0 -> t_live[t] = false; t_freed[t]++ :: else -> skip fi
	}
}

/* runtime.c:219-254 weft_spawn_poll, detached (out == NULL). `onworker`:
 * called from a poll on worker `me` (schedule goes to the ring). */
inline spawn(t, onworker) {
	t_tried[t] = true;
	if
	:: shutdown -> t_drops[t]++                       /* runtime.c:232-235 -ESHUTDOWN */
	:: else ->
		atomic {                                  /* runtime.c:237-243 alloc + init */
			t_live[t] = true; t_notified[t] = true; t_refs[t] = 2
		};
		mutex_lock(owned_lock);                   /* owned.c:141 */
		if
		:: owned_closed ->                        /* owned.c:142-144 */
			mutex_unlock(owned_lock);
			atomic { t_live[t] = false; t_refs[t] = 0; t_freed[t]++ };  /* runtime.c:245 */
			t_drops[t]++                      /* runtime.c:246-247 */
		:: else ->
			t_listed[t] = true;               /* owned.c:146-154 */
			mutex_unlock(owned_lock);
			schedule(t, onworker)             /* runtime.c:252 */
		fi
	fi
}

/* worker.c:131-161 weft__schedule of a Notified reference. */
inline schedule(t, onworker) {
	if
	:: onworker -> RQ(me, t)++; notify()              /* worker.c:145, 153 */
	:: else ->
		mutex_lock(inject_lock);                  /* inject.c:248 */
		if
		:: inject_closed -> mutex_unlock(inject_lock); unref(t)  /* worker.c:156-158 */
		:: else -> inj[t]++; mutex_unlock(inject_lock); notify()  /* inject.c:253-260 */
		fi
	fi
}

/* task.c:182-202 wake_by_val; ok: 1 submit, 2 free (T_REFS(ns) == 0). */
inline wake_by_val(t) {
	atomic {
		assert(t_live[t]);
		if
		:: t_running[t] -> t_notified[t] = true; t_refs[t]--; ok = 0
		:: !t_running[t] && (t_complete[t] || t_notified[t]) -> t_refs[t]--; ok = 0
		:: else -> t_notified[t] = true; ok = 1
		fi;
		if :: ok == 0 && t_refs[t] == 0 -> ok = 2 :: else -> skip fi
	};
	if
	:: ok == 1 -> schedule(t, false)                  /* task.c:198-199 */
	:: ok == 2 -> atomic { t_live[t] = false; t_freed[t]++ }  /* task.c:200-201 */
	:: else -> skip
	fi
}

/* Take any queued Notified entry from core me's ring / the inject queue. */
inline take_ring(w) {
	atomic {
		if
		:: RQ(w, 0) > 0 -> RQ(w, 0)--; t = 0; got = true
		:: RQ(w, 1) > 0 -> RQ(w, 1)--; t = 1; got = true
		:: else -> skip
		fi
	}
}
inline take_inject() {
	atomic {
		if
		:: inj[0] > 0 -> inj[0]--; t = 0; got = true
		:: inj[1] > 0 -> inj[1]--; t = 1; got = true
		:: else -> skip
		fi
	}
}

/* task.c:122-164 weft__task_run on worker me. */
inline task_run(t) {
	atomic {                                          /* task.c:124-133 */
		assert(t_live[t]);
		if
		:: t_running[t] || t_complete[t] -> ok = 2    /* stale Notified */
		:: else -> t_running[t] = true; t_notified[t] = false;
			ok = (t_cancelled[t] -> 1 : 0)
		fi
	};
	if
	:: ok == 2 -> unref(t)
	:: ok == 1 -> complete(t)                         /* task.c:135-137 */
	:: else ->
		t_polls[t]++;                             /* task.c:145 poll */
		if
		:: t == 0 && t_polls[0] == 1 ->
			spawn(1, true);                   /* the child, from the worker */
			atomic { t_refs[0]++; waker_has = true };  /* weft_waker_clone */
			ok = 3                            /* PENDING */
		:: else -> ok = 4                         /* READY */
		fi;
		if
		:: ok == 4 -> complete(t)                 /* task.c:146-148 */
		:: else ->
			atomic {                          /* task.c:150-157 */
				if
				:: t_cancelled[t] -> ok = 1
				:: else -> t_running[t] = false; ok = (t_notified[t] -> 5 : 6)
				fi
			};
			if
			:: ok == 1 -> complete(t)
			:: ok == 5 -> RQ(me, t)++; notify()  /* task.c:161 yield (deferred list) */
			:: else -> unref(t)               /* task.c:163 */
			fi
		fi
	fi
}

proctype worker(byte me)
{
	byte nu, ns, core, old, prev, ok, i, t;
	bool was, last, got, is_searching = false;
loop:
	atomic {
		nu = 0; ns = 0; core = 0; old = 0; prev = 0; ok = 0; i = 0; t = 0;
		was = false; last = false; got = false;
		if :: shutdown -> goto done :: else -> skip fi   /* worker.c:403 */
	};
	atomic { take_ring(me); if :: got -> goto running :: else -> skip fi };  /* worker.c:274 */
	atomic { take_inject(); if :: got -> goto running :: else -> skip fi };  /* worker.c:276 */
	if
	:: !is_searching ->
		try_search();                             /* worker.c:282 */
		if :: ok == 0 -> goto park :: else -> is_searching = true fi
	:: else -> skip
	fi;
#if N > 1
	atomic { take_ring((me + 1) % N); if :: got -> goto running :: else -> skip fi };  /* steal */
#endif
	atomic { take_inject(); if :: got -> goto running :: else -> skip fi };  /* worker.c:303 */
	goto park;
running:
	if
	:: is_searching ->
		is_searching = false;
		end_search();                             /* worker.c:319 */
		if :: last -> notify_if_work() :: else -> skip fi  /* idle.c weft__idle_relay */
	:: else -> skip
	fi;
	task_run(t);
	goto loop;
park:
	atomic { was = is_searching; is_searching = false };
	idle_park(me);
	if :: last -> notify_if_work() :: else -> skip fi;
	do
	:: shutdown -> goto done                          /* worker.c:363 */
	:: else ->
		park_word(me);
		atomic {
			ok = 0;
			if :: shutdown -> goto done :: else -> skip fi;
			if :: !sleeping[me] -> break :: else -> skip fi
		}
	od;
	is_searching = true;
	goto loop;
done:
	workers_done++
}

proctype spawner()
{
	byte nu, ns, core, old, ok, me = 0;
	spawn(0, false);
	spawner_done = true
}

proctype waker()
{
	byte nu, ns, core, old, ok, me = 0;
end:	waker_has;          /* task 0 may never get to hand us a waker */
	wake_by_val(0);
	waker_done = true
}

/* runtime.c:306-390 weft_runtime_shutdown */
proctype shutter()
{
	byte old, i, t;
	bool got;
	shutdown = true;                                  /* runtime.c:322 */
	mutex_lock(inject_lock); inject_closed = true; mutex_unlock(inject_lock);  /* :323 */
#ifndef BROKEN_NO_OWNED_CLOSE
	mutex_lock(owned_lock); owned_closed = true; mutex_unlock(owned_lock);     /* :324 */
#endif
	i = 0;
	do                                                /* runtime.c:325-328 */
	:: i < N -> unpark(i); i++
	:: else -> break
	od;
	workers_done == N;                                /* runtime.c:340-353 join */
	do                                                /* runtime.c:382-383 sweep */
	:: atomic {
		if
		:: t_listed[0] -> t = 0
		:: t_listed[1] -> t = 1
		:: else -> break
		fi };
		atomic {                                  /* task.c:166-177 */
			assert(t_live[t] && !t_running[t] && !t_complete[t]);
			t_running[t] = true; t_cancelled[t] = true; t_refs[t]++
		};
		complete(t)
	od;
	/* runtime.c:286-304 drain_queues: the rings, then the inject queue */
	i = 0;
	do
	:: i < N ->
		do
		:: atomic { got = false; take_ring(i); if :: !got -> break :: else -> skip fi };
			unref(t)
		od;
		i++
	:: else -> break
	od;
	do
	:: atomic { got = false; take_inject(); if :: !got -> break :: else -> skip fi };
		unref(t)
	od;
	swept = true
}

/* Start everyone; with every actor finished, check that each attempted
 * spawn was dropped exactly once and every task freed exactly once. */
init
{
	byte i = 0;
	atomic {
		do
		:: i < N -> run worker(i); i++
		:: else -> break
		od;
		run spawner(); run waker(); run shutter()
	};
	swept && spawner_done && (waker_done || !waker_has);
	i = 0;
	do
	:: i < T ->
		assert(!t_tried[i] || t_drops[i] == 1);
		assert(t_freed[i] <= 1);
		assert(!t_live[i]);
		i++
	:: else -> break
	od
}
