//! Calling plugins under deadlines.
//!
//! Plugins run one after another on a worker thread while the calling thread sleeps until they
//! are done or the running plugin's deadline passes. A plugin that misses it is abandoned with
//! its thread (it cannot be killed; the process exits soon after answering), its fault
//! recorded, and a fresh worker carries on with the plugins after it. Waking only at deadlines
//! and at the end keeps the cost to two wake-ups per event, each through a
//! [`Doorbell`] (a pipe, whose wake-up lets the woken thread take the waker's CPU, see there).
//!
//! Each call is measured here: wall time (monotonic), the worker thread's CPU time, memory
//! (from the plugin's counting allocator, or a `mallinfo2` delta for C plugins) and bytes the
//! plugin wrote to fd 1 (which points at a scratch file while plugins run, see [`crate::output`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chronicle_plugin_api::abi::CallStats;

use crate::doorbell::Doorbell;
use crate::output::StdoutProbe;
use crate::plugin::{inflight, CallResult, Candidate, Fault, LoadedPlugin};

/// One plugin to call, with its config section (JSON text) and deadline.
pub struct Job {
    pub plugin: Arc<LoadedPlugin>,
    /// The file it was loaded from, named in the in-flight marker during the call.
    pub candidate: Candidate,
    pub config_json: String,
    pub timeout: Duration,
}

/// What one call did and cost.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub index: usize,
    pub result: CallResult,
    pub wall_ns: u64,
    pub cpu_ns: u64,
    pub stats: CallStats,
    /// `counting_allocator`, `mallinfo2` or `none`.
    pub memory_source: &'static str,
    pub stdout_bytes: u64,
    /// Another plugin call ran in this process while this one did (another event's, on
    /// another thread of a resident host): stdout bytes cannot be told apart.
    pub stdout_shared: bool,
    /// Time spent waiting for another event's call of the same plugin to return (see
    /// [`LoadedPlugin::wait_turn`]); not part of `wall_ns`.
    pub turn_wait_ns: u64,
    /// The deadline passed while the call was still waiting for its turn: the plugin never
    /// saw this event, another event's call of it hangs.
    pub turn_missed: bool,
}

/// Every plugin call in this process, for attributing what lands on the shared stdout.
static CALLS: crate::overlap::Overlaps = crate::overlap::Overlaps::new();

#[derive(Default)]
struct Progress {
    /// The job running now and when it started.
    current: Option<(usize, Instant)>,
    results: Vec<CallRecord>,
    done: bool,
    abandoned: bool,
    /// The current job waits for another thread's call of its plugin to return.
    waiting_turn: bool,
}

struct Shared {
    progress: Mutex<Progress>,
    /// Rung by the worker when it is done (the calling thread's own, [`CALLING_BELL`]).
    done: Arc<Doorbell>,
}

thread_local! {
    /// Each calling thread's doorbell for hearing from its workers, made at its first dispatch:
    /// a new pipe per event would cost two descriptors' creation and closing each time.
    static CALLING_BELL: Arc<Doorbell> = Arc::new(Doorbell::new());
}

/// Runs every job, in order, within `budget` overall. Returns one record per job, in order.
pub fn run(jobs: Vec<Job>, event_json: Arc<str>, budget: Duration, probe: Option<StdoutProbe>) -> Vec<CallRecord> {
    let jobs: Arc<[Job]> = jobs.into();
    let budget_end = Instant::now() + budget;
    let mut records: Vec<CallRecord> = Vec::with_capacity(jobs.len());
    let mut next = 0;
    // The worker marks its calls in the in-flight slot of the thread serving this event.
    let slot = inflight::slot();
    let done = CALLING_BELL.with(Arc::clone);
    while next < jobs.len() {
        if Instant::now() >= budget_end {
            for index in next..jobs.len() {
                records.push(not_run(index, "not run: the event's dispatch budget was used up by earlier plugins"));
            }
            break;
        }
        let shared = Arc::new(Shared { progress: Mutex::new(Progress::default()), done: Arc::clone(&done) });
        let spawned_at = Instant::now();
        let worker = {
            let (jobs, shared, event_json) = (Arc::clone(&jobs), Arc::clone(&shared), Arc::clone(&event_json));
            on_worker(Box::new(move || {
                inflight::use_slot(slot);
                work(&jobs, next, &event_json, &shared, probe)
            }))
        };
        if let Err(e) = worker {
            for index in next..jobs.len() {
                records.push(not_run(index, &format!("not run: cannot start a worker thread: {e}")));
            }
            break;
        }
        next = wait_for(&jobs, next, &shared, spawned_at, budget_end, &mut records);
    }
    records
}

type Task = Box<dyn FnOnce() + Send>;

/// Where a worker thread is given its next task: the task, then a ring.
struct Post {
    task: Mutex<Option<Task>>,
    bell: Doorbell,
}

/// Worker threads waiting for their next task. A worker that finishes a task puts itself back
/// here; one stuck in an abandoned plugin never does, and the next event gets a new thread. A
/// resident host thus starts one thread per serving thread, not one per event.
static IDLE_WORKERS: Mutex<Vec<Arc<Post>>> = Mutex::new(Vec::new());

fn on_worker(task: Task) -> std::io::Result<()> {
    let idle = IDLE_WORKERS.lock().unwrap_or_else(|p| p.into_inner()).pop();
    let post = match idle {
        Some(post) => post,
        None => {
            let post = Arc::new(Post { task: Mutex::new(None), bell: Doorbell::new() });
            let theirs = Arc::clone(&post);
            std::thread::Builder::new().name("chronicle-plugin".into()).spawn(move || serve_tasks(&theirs))?;
            post
        }
    };
    *post.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
    post.bell.ring();
    Ok(())
}

/// A worker thread's life: each task it is given, until enough others wait for work.
fn serve_tasks(post: &Arc<Post>) {
    loop {
        post.bell.wait(None);
        let Some(task) = post.task.lock().unwrap_or_else(|p| p.into_inner()).take() else { continue };
        task();
        let mut idle = IDLE_WORKERS.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() >= inflight::MAX_SLOTS {
            return; // enough are waiting for every serving thread
        }
        idle.push(Arc::clone(post));
    }
}

/// Waits for the worker started at job `first`; returns the index to resume from.
fn wait_for(jobs: &[Job], first: usize, shared: &Shared, spawned_at: Instant, budget_end: Instant, records: &mut Vec<CallRecord>) -> usize {
    let mut progress = shared.progress.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if progress.done {
            records.append(&mut progress.results);
            return jobs.len();
        }
        let (index, started) = progress.current.unwrap_or((first, spawned_at));
        let deadline = (started + jobs[index].timeout).min(budget_end);
        let now = Instant::now();
        // The worker does not wake us when it moves on (a wake-up per plugin costs more than the
        // plugins do), so also wake when a later plugin could at the earliest miss its deadline.
        let soonest_later = jobs[index + 1..].iter().map(|j| now + j.timeout).min();
        let wake_at = soonest_later.map_or(deadline, |t| t.min(deadline));
        if now >= deadline {
            progress.abandoned = true;
            records.append(&mut progress.results);
            let timed_out = Err(Fault::TimedOut(now - started));
            records.push(CallRecord { turn_missed: progress.waiting_turn, ..unanswered(index, timed_out, (now - started).as_nanos() as u64) });
            return index + 1;
        }
        drop(progress);
        shared.done.wait(Some(wake_at.saturating_duration_since(now)));
        progress = shared.progress.lock().unwrap_or_else(|p| p.into_inner());
    }
}

fn work(jobs: &[Job], first: usize, event_json: &str, shared: &Shared, probe: Option<StdoutProbe>) {
    // The end of one call's measurement is the start of the next one's: one CPU-time read and
    // one stdout-size read per call instead of two (each is a system call here).
    let mut marks = Marks { cpu_ns: thread_cpu_ns(), stdout: probe.map_or(0, |p| p.written()), call: CALLS.began() };
    for (index, job) in jobs.iter().enumerate().skip(first) {
        let asked = Instant::now();
        {
            let mut p = shared.progress.lock().unwrap_or_else(|p| p.into_inner());
            if p.abandoned {
                return;
            }
            p.current = Some((index, asked));
        }
        // The deadline runs from `asked`: waiting behind another event's call of the same
        // plugin that hangs ends like hanging does, but is told apart (`turn_missed`).
        let (_turn, started) = match job.plugin.try_turn() {
            Ok(turn) => (turn, asked),
            Err(_) => {
                shared.progress.lock().unwrap_or_else(|p| p.into_inner()).waiting_turn = true;
                let turn = job.plugin.wait_turn();
                let mut p = shared.progress.lock().unwrap_or_else(|p| p.into_inner());
                if p.abandoned {
                    return;
                }
                p.waiting_turn = false;
                (Some(turn), Instant::now())
            }
        };
        let mut record = call_one(index, job, event_json, probe, started, &mut marks);
        record.turn_wait_ns = (started - asked).as_nanos() as u64;
        let mut p = shared.progress.lock().unwrap_or_else(|p| p.into_inner());
        if p.abandoned {
            return;
        }
        p.results.push(record);
    }
    shared.progress.lock().unwrap_or_else(|p| p.into_inner()).done = true;
    shared.done.ring();
}

/// Thread CPU time and diverted-stdout size at the end of the previous measurement.
struct Marks {
    cpu_ns: u64,
    stdout: u64,
    /// The number of the previous call among this process's calls ([`CALLS`]).
    call: u64,
}

fn call_one(index: usize, job: &Job, event_json: &str, probe: Option<StdoutProbe>, started: Instant, marks: &mut Marks) -> CallRecord {
    let all = CALLS.begin();
    // Stdout was measured at the previous call's end; if another call ran since (another
    // event's, on another thread), measure afresh.
    if all.number() != marks.call + 1 {
        marks.stdout = probe.map_or(0, |p| p.written());
    }
    marks.call = all.number();
    let own = job.plugin.calls.begin();
    // The heap delta is the whole process's: only meaningful if no other event was handled.
    let heap_before = if job.plugin.counts_own_memory() { None } else { heap_in_use().map(|h| (h, crate::overlap::SERVING.watch(1))) };
    inflight::enter("call", &job.candidate);
    let result = match job.plugin.init(&job.config_json) {
        Ok(()) => job.plugin.call(event_json),
        Err(e) => Err(Fault::InitFailed(e)),
    };
    inflight::leave();
    let wall_ns = started.elapsed().as_nanos() as u64;
    let cpu_now = thread_cpu_ns();
    let cpu_ns = cpu_now.saturating_sub(marks.cpu_ns);
    marks.cpu_ns = cpu_now;
    let (stats, memory_source) = match (&result, heap_before) {
        // Another call of this plugin (allowed by its manifest) allocated through the same counters.
        (Ok(o), None) if o.stats.counted && !own.overlapped() => (o.stats, "counting_allocator"),
        (_, Some((before, watch))) if watch.alone() => {
            let grown = heap_in_use().unwrap_or(before).saturating_sub(before);
            (CallStats { counted: false, allocations: 0, bytes_allocated: grown, peak_live_bytes: grown }, "mallinfo2")
        }
        _ => (CallStats::default(), "none"),
    };
    let stdout_now = probe.map_or(0, |p| p.written());
    let stdout_bytes = stdout_now.saturating_sub(marks.stdout);
    marks.stdout = stdout_now;
    let stdout_shared = all.overlapped();
    CallRecord { index, result, wall_ns, cpu_ns, stats, memory_source, stdout_bytes, stdout_shared, turn_wait_ns: 0, turn_missed: false }
}

fn not_run(index: usize, why: &str) -> CallRecord {
    unanswered(index, Err(Fault::Error(why.to_owned())), 0)
}

/// The record of a call that returned nothing to measure (not run, or abandoned after `wall_ns`).
fn unanswered(index: usize, result: CallResult, wall_ns: u64) -> CallRecord {
    CallRecord {
        index,
        result,
        wall_ns,
        cpu_ns: 0,
        stats: CallStats::default(),
        memory_source: "none",
        stdout_bytes: 0,
        stdout_shared: false,
        turn_wait_ns: 0,
        turn_missed: false,
    }
}

/// What `call_one` adds around a plugin call, without the call: two monotonic clock reads, one
/// thread CPU-time read and one read of the diverted stdout's size (the previous call's end
/// readings serve as this call's start). For the overhead benchmark.
pub fn instrumentation_sample(probe: Option<StdoutProbe>) -> (u64, u64, u64) {
    let started = Instant::now();
    let wall = started.elapsed().as_nanos() as u64;
    let cpu = thread_cpu_ns();
    let written = probe.map_or(0, |p| p.written());
    (wall, cpu, written)
}

/// CPU time of the calling thread, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec out-pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0;
    }
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

/// Heap bytes in use (glibc), for plugins without a counting allocator.
fn heap_in_use() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 has no preconditions.
        let info = unsafe { libc::mallinfo2() };
        Some(info.uordblks as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}
