//! The server's side: the accept loop and one event's exchange.

use std::sync::atomic::{AtomicBool, Ordering};

use super::workers::{Post, Workers};
use super::*;

/// Why a serving thread stopped.
pub(super) enum Ended {
    /// No event for its idle limit.
    Idle,
    /// Its socket was taken away, or the host retires or stops.
    Other,
}

/// Tells every serving thread of this host to leave: sets `stop` and shuts the listening
/// socket down, which wakes the threads waiting in `poll` on it (clients queued on it are
/// refused when it closes, and hand their events over).
fn halt(stop: &AtomicBool, listener: &UnixListener) {
    stop.store(true, Ordering::SeqCst);
    // SAFETY: shutdown on a descriptor this process owns; it stays open until every thread is done.
    unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR) };
}

/// Runs a server for this process's configuration until it is idle for `idle`, its socket is
/// taken away, or it retires. Returns at once if another server holds the lock.
pub fn serve(config: Config, idle: Duration) -> Result<(), ResidentError> {
    let endpoint = Endpoint::for_config(&config)?;
    // SAFETY: setsid has no preconditions; failing (already a group leader) is harmless.
    unsafe { libc::setsid() };
    crate::private::create_private_dir(endpoint.dir())?;
    check_private(endpoint.dir())?;
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&endpoint.lock)?;
    // SAFETY: flock on a descriptor we own; the lock lives as long as `lock`.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        tracing::debug!("another resident host holds {}", endpoint.lock.display());
        return Ok(());
    }
    let _ = std::fs::remove_file(&endpoint.socket);
    let listener = UnixListener::bind(&endpoint.socket)?;
    // Workers accept from it too (`workers`): whoever loses the race must not block in accept.
    listener.set_nonblocking(true)?;
    let ours = std::fs::metadata(&endpoint.socket)?.ino();
    crate::shutdown::stop_serving_on_sigterm(listener.as_raw_fd());
    tracing::info!(socket = %endpoint.socket.display(), "resident host listening");

    if crate::team::background::start(&config) {
        tracing::info!("pushing to the team database in the background");
    }
    // Every serving thread marks its plugin calls in a slot of its own.
    crate::plugin::inflight::set_slots(super::workers::max_workers() + 1);
    let mut host = Host::new(config);
    host.watch_plugin_dirs();
    host.warm_up();
    host.upkeep();
    let stop = AtomicBool::new(false);
    let post = Post { listener: &listener, socket: &endpoint.socket, ino: ours, idle, stop: &stop };
    let served = std::thread::scope(|scope| {
        let mut workers = Workers::new(scope, &post);
        let served = serve_socket(&mut host, &listener, &endpoint.socket, ours, idle, &stop, "resident host", |host| workers.add(host));
        // Unlink first so new clients start a fresh server instead of queueing on this one;
        // workers finish the events they hold and leave.
        if std::fs::metadata(&endpoint.socket).is_ok_and(|m| m.ino() == ours) {
            let _ = std::fs::remove_file(&endpoint.socket);
        }
        halt(&stop, &listener);
        drop(lock);
        served
    });
    crate::shutdown::forget_listener();
    // Every thread is done. Idle, nobody is waiting: the first hook after the idle-out should
    // not have to replay this host's log. (Retiring, a new host may be busy with the database:
    // a TRUNCATE checkpoint would hold its writes.)
    if matches!(served, Ok(Ended::Idle)) {
        host.leave_log_short();
    }
    crate::plugin::inflight::finish();
    // Never closed: the last connection to close checkpoints the log again and deletes it,
    // and the next process would then pay for starting a new one (a synced header and
    // directory) in its event's commit. The caller exits the process.
    std::mem::forget(host);
    served.map(drop).map_err(ResidentError::from)
}

/// Serves `listener` (whose socket file is `socket`, inode `ino`) until idle for `idle`, the
/// socket file is no longer that one, `stop` is set, or the host must retire (then it sets
/// `stop` for the other threads). `queued` hears of each event during which another client was
/// waiting.
#[allow(clippy::too_many_arguments)]
pub(super) fn serve_socket(
    host: &mut Host,
    listener: &UnixListener,
    socket: &Path,
    ino: u64,
    idle: Duration,
    stop: &AtomicBool,
    who: &str,
    mut queued: impl FnMut(&Host),
) -> io::Result<Ended> {
    let mut last_event = Instant::now();
    loop {
        let woke = wait(listener, host.log_checkpointed(), TICK)?;
        if crate::shutdown::stop_asked() {
            tracing::info!("{who} exiting: asked to stop (SIGTERM or SIGINT)");
            return Ok(Ended::Other);
        }
        if stop.load(Ordering::SeqCst) {
            tracing::info!("{who} exiting with the others");
            return Ok(Ended::Other);
        }
        match woke {
            Wake::LogCheckpointed => host.restart_log(),
            Wake::Tick => {
                let still_ours = std::fs::metadata(socket).is_ok_and(|m| m.ino() == ino);
                if !still_ours || last_event.elapsed() >= idle {
                    tracing::info!(still_ours, "{who} exiting");
                    return Ok(if still_ours { Ended::Idle } else { Ended::Other });
                }
            }
            Wake::Client => {
                // With workers, another host may have taken it first.
                let Ok((stream, _)) = listener.accept() else { continue };
                last_event = Instant::now();
                // A client accepted for a group whose request had not arrived yet starts the next one.
                let mut next = Some(stream);
                while let Some(stream) = next.take() {
                    let mut waiting = false;
                    match serve_one(host, stream, listener, &mut waiting, &mut next) {
                        Ok(true) if waiting => queued(host),
                        Ok(true) => {}
                        // A client left in `next` sees its connection close and hands its event over.
                        Ok(false) => {
                            halt(stop, listener);
                            return Ok(Ended::Other);
                        }
                        Err(e) => tracing::warn!("{who}: dropped a connection: {e}"),
                    }
                }
            }
        }
    }
}

/// At most this many events share one commit.
const MAX_GROUP: usize = 8;
/// Clients found waiting join a group for this long after its first event was handled: each
/// event's answer also waits for the handling of those after it.
const GROUP_WINDOW: Duration = Duration::from_millis(2);

/// Handles one connection, and the clients that were already waiting when it was handled
/// (group commit: their events are recorded in one transaction, then each is answered); false
/// means the server must stop serving. `queued` says whether another client was waiting when
/// the answers were ready: one that connected before these clients had their answers, so not
/// their next events but concurrent ones. A waiting client whose request has not arrived yet
/// is not waited for (the group's answers would wait with it): it is left in `next`.
fn serve_one(
    host: &mut Host,
    stream: UnixStream,
    listener: &UnixListener,
    queued: &mut bool,
    next: &mut Option<UnixStream>,
) -> io::Result<bool> {
    // While this thread holds events, measurements that see the whole process know it.
    let _serving = crate::overlap::SERVING.begin();
    let mut group = Vec::new();
    let mut serving = match take(host, stream)? {
        Taken::Event(stream, pending) => {
            group.push((stream, pending));
            true
        }
        Taken::Nothing => return Ok(true),
        Taken::Retire => return Ok(false),
    };
    let opened = Instant::now();
    while serving
        && group.len() < MAX_GROUP
        && opened.elapsed() < GROUP_WINDOW
        && !group.iter().any(|(_, p)| p.abandoned_a_plugin())
        && super::workers::pending(listener)
    {
        // With workers, another host may have taken it first.
        let Ok((stream, _)) = listener.accept() else { break };
        if !readable_now(&stream) {
            *next = Some(stream);
            break;
        }
        match take(host, stream) {
            Ok(Taken::Event(stream, pending)) => group.push((stream, pending)),
            Ok(Taken::Nothing) => {}
            Ok(Taken::Retire) => serving = false,
            Err(e) => tracing::warn!("dropped a connection: {e}"),
        }
    }
    // Events that never got a plugin's turn (another thread's event hangs in it), or met a
    // plugin file changed since it was loaded, go back to their clients unrecorded, and this
    // host retires.
    let (back, group): (Vec<_>, Vec<_>) = group.into_iter().partition(|(_, p)| p.hand_back());
    let mut retire = !back.is_empty();
    for (mut stream, _) in back {
        tracing::warn!("handing an event back: a plugin's turn never came (another event hangs in it), or its file changed");
        if let Err(e) = stream.write_all(&Response::Retry.encode()) {
            tracing::warn!("could not hand an event back: {e}");
        }
    }
    let (streams, pending): (Vec<UnixStream>, Vec<Box<Pending>>) = group.into_iter().unzip();
    let replies = host.conclude(pending.into_iter().map(|p| *p).collect());
    *queued = super::workers::pending(listener);
    for (mut stream, Reply { exit_code, stdout, stderr, retire: abandoned }) in streams.into_iter().zip(replies) {
        retire |= abandoned;
        if let Err(e) = stream.write_all(&Response::Answered { exit_code, stdout, stderr }.encode()) {
            tracing::warn!("could not answer a client: {e}");
        }
    }
    if retire {
        tracing::warn!("a plugin hung and was abandoned on its thread; the resident host retires");
    }
    host.upkeep();
    Ok(serving && !retire)
}

/// Whether a request's first bytes are already there to read.
fn readable_now(stream: &UnixStream) -> bool {
    let mut fd = libc::pollfd { fd: stream.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, no wait.
    unsafe { libc::poll(&mut fd, 1, 0) == 1 && fd.revents & libc::POLLIN != 0 }
}

/// What one connection brought.
enum Taken {
    /// An event, handled and waiting to be recorded and answered.
    Event(UnixStream, Box<Pending>),
    /// Nothing to answer (a probe, a request whose client has given up): serve on.
    Nothing,
    /// The event was handed back (a plugin file changed, the database was replaced): stop.
    Retire,
}

/// Reads one request and handles its event (without recording it).
fn take(host: &mut Host, mut stream: UnixStream) -> io::Result<Taken> {
    if !same_user(&stream) {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, "peer is another user"));
    }
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let received = Instant::now();
    // One deadline for the whole request: a peer sending a byte at a time must not hold the
    // host (and every client queued behind it) for longer.
    let mut reader = Deadline { stream: &stream, until: received + REQUEST_TIMEOUT };
    let mut header = [0u8; Request::HEADER_LEN];
    match reader.read_exact(&mut header) {
        Ok(()) => {}
        // A probe (`chronicle doctor`): connected and left.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Taken::Nothing),
        Err(e) => return Err(e),
    }
    let request = Request::read_from(&mut reader, &header)?;
    let receive = received.elapsed();
    // A client waits `patience`, then hands its event to a child of its own: a request that
    // waited longer than that (this host was stopped, or stuck behind a slow event) has been
    // handled already. Its id would keep the record single anyway; not running the plugins
    // again keeps their side effects single too.
    let budget = host.config.file.hook.dispatch_budget_ms.max(crate::config::HookSettings::default().dispatch_budget_ms);
    let waited = Duration::from_nanos(crate::clock::unix_ns().saturating_sub(request.received_at_ns).max(0) as u64);
    if waited >= patience(budget) {
        tracing::warn!(waited_ms = waited.as_millis() as u64, "dropping a request whose client has given up");
        return Ok(Taken::Nothing);
    }
    if host.plugins_changed() {
        tracing::info!("a plugin file changed; handing this event back and retiring");
        stream.write_all(&Response::Retry.encode())?;
        return Ok(Taken::Retire);
    }
    if host.store_replaced() {
        tracing::warn!("the database file was deleted or replaced; handing this event back and retiring");
        stream.write_all(&Response::Retry.encode())?;
        return Ok(Taken::Retire);
    }
    let mut stages = Stages::default();
    stages.add("hook.read", Duration::from_nanos(request.read_ns));
    stages.add("resident.receive", receive);
    let origin = Origin::Client { started_unix_ns: request.client_started_unix_ns, peak_rss_bytes: request.client_peak_rss_bytes };
    let pending = host.prepare(&request.input, request.invocation, request.received_at_ns, &mut stages, origin, Vec::new());
    Ok(Taken::Event(stream, Box::new(pending)))
}

/// Reads a stream against one deadline for all reads together.
struct Deadline<'a> {
    stream: &'a UnixStream,
    until: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the request did not arrive within its deadline"));
        }
        self.stream.set_read_timeout(Some(left))?;
        (&mut &*self.stream).read(buf)
    }
}

enum Wake {
    Client,
    /// The background checkpointer copied the whole log: restart it before the next event.
    LogCheckpointed,
    Tick,
}

/// Waits for a client (first) or the checkpointer, at most `timeout`.
fn wait(listener: &UnixListener, checkpointed: Option<std::os::fd::BorrowedFd<'_>>, timeout: Duration) -> io::Result<Wake> {
    use std::os::fd::AsRawFd;
    let mut fds = [
        libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: checkpointed.map_or(-1, |f| f.as_raw_fd()), events: libc::POLLIN, revents: 0 },
    ];
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: two valid pollfds (a negative fd is ignored by poll).
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(Wake::Tick) } else { Err(e) };
    }
    Ok(if fds[0].revents != 0 {
        Wake::Client
    } else if fds[1].revents != 0 {
        Wake::LogCheckpointed
    } else {
        Wake::Tick
    })
}
