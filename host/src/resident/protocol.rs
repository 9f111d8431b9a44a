//! The bytes between `chronicle hook` and the resident host: the invocation's identity, the
//! request, the response, and the handover a client gives a child it runs instead.

use super::*;

/// The identity of one `chronicle hook` invocation: when the client received the event and 64
/// random bits, made by the process Claude Code started before anything can fail. Every path
/// that records the event (the resident host, a handover child, a spool line) records it with
/// this id, and the store keeps one row per id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvocationId {
    pub received_at_ns: u64,
    pub random: u64,
}

impl InvocationId {
    pub fn new(received_at_ns: i64) -> InvocationId {
        let mut random = 0u64;
        // SAFETY: getrandom fills the 8 bytes of a u64 it is given.
        let got = unsafe { libc::getrandom((&mut random as *mut u64).cast(), 8, libc::GRND_NONBLOCK) };
        if got != 8 {
            // No entropy yet (early boot): the process id and the clock still separate invocations.
            random = (u64::from(std::process::id()) << 32) ^ crate::clock::unix_ns() as u64;
        }
        InvocationId { received_at_ns: received_at_ns as u64, random }
    }

    /// 32 hex digits, as stored in `events.invocation_id`.
    pub fn text(&self) -> String {
        format!("{:016x}{:016x}", self.received_at_ns, self.random)
    }

    pub fn parse(text: &str) -> Option<InvocationId> {
        if text.len() != 32 || !text.is_ascii() {
            return None;
        }
        Some(InvocationId {
            received_at_ns: u64::from_str_radix(&text[..16], 16).ok()?,
            random: u64::from_str_radix(&text[16..], 16).ok()?,
        })
    }
}

/// What the client sends: the event bytes as read, and the client's own clock and memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub invocation: InvocationId,
    pub input: RawInput,
    pub received_at_ns: i64,
    pub client_started_unix_ns: i64,
    pub client_peak_rss_bytes: u64,
    pub read_ns: u64,
}

/// What the server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Answered {
        exit_code: i32,
        stdout: Option<String>,
        stderr: Vec<String>,
    },
    /// Handle the event yourself (the server is retiring without having touched it).
    Retry,
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend_from_slice(b);
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.0.len() < n {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated message"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> io::Result<u64> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let n = usize::try_from(self.u64()?).map_err(|_| invalid("length out of range"))?;
        Ok(self.take(n)?.to_vec())
    }

    fn text(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?).map_err(|_| invalid("text is not UTF-8"))
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

impl Request {
    /// The request for `input`, read in `read` by this process (the client), which Claude Code
    /// started and which received the event at `received_at_ns`.
    pub fn new(input: RawInput, received_at_ns: i64, read: Duration) -> Request {
        Request {
            invocation: InvocationId::new(received_at_ns),
            input,
            received_at_ns,
            client_started_unix_ns: received_at_ns - crate::clock::since_start().as_nanos() as i64,
            client_peak_rss_bytes: crate::clock::peak_rss_bytes(),
            read_ns: read.as_nanos() as u64,
        }
    }

    /// Bytes before the payload: magic, seven u64 fields, flags, the payload's length.
    pub const HEADER_LEN: usize = 4 + 7 * 8 + 1 + 8;

    /// Everything before the payload. Sent separately from it, so a large payload is never
    /// copied into a message buffer.
    pub fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::HEADER_LEN);
        out.extend_from_slice(MAGIC);
        put_u64(&mut out, self.invocation.received_at_ns);
        put_u64(&mut out, self.invocation.random);
        put_u64(&mut out, self.received_at_ns as u64);
        put_u64(&mut out, self.client_started_unix_ns as u64);
        put_u64(&mut out, self.client_peak_rss_bytes);
        put_u64(&mut out, self.read_ns);
        put_u64(&mut out, self.input.total_bytes);
        out.push(u8::from(self.input.truncated) | (u8::from(self.input.timed_out) << 1));
        put_u64(&mut out, self.input.bytes.len() as u64);
        out
    }

    /// The request without its payload, and the payload's length, from the first
    /// [`Request::HEADER_LEN`] bytes of a message.
    pub fn decode_header(header: &[u8]) -> io::Result<(Request, usize)> {
        let mut c = Cursor(header);
        if c.take(4)? != MAGIC {
            return Err(invalid("not a chronicle request"));
        }
        let invocation = InvocationId { received_at_ns: c.u64()?, random: c.u64()? };
        let received_at_ns = c.u64()? as i64;
        let client_started_unix_ns = c.u64()? as i64;
        let client_peak_rss_bytes = c.u64()?;
        let read_ns = c.u64()?;
        let total_bytes = c.u64()?;
        let flags = c.take(1)?[0];
        let len = usize::try_from(c.u64()?).map_err(|_| invalid("length out of range"))?;
        let request = Request {
            invocation,
            input: RawInput { bytes: Vec::new(), total_bytes, truncated: flags & 1 != 0, timed_out: flags & 2 != 0 },
            received_at_ns,
            client_started_unix_ns,
            client_peak_rss_bytes,
            read_ns,
        };
        Ok((request, len))
    }

    /// Reads one request: header, then exactly the payload it announces, into one buffer.
    pub fn read_from(stream: &mut impl Read, header: &[u8]) -> io::Result<Request> {
        let (mut request, len) = Request::decode_header(header)?;
        // Every read asks for all that is still due (`read_to_end` starts at 8 KiB and doubles:
        // nine reads and as many wake-ups of the writing client for a 482 KB event). The buffer
        // grows as bytes arrive (1 MiB, then doubling), so an absurd announced length costs
        // nothing before the stream runs dry.
        // The first MiB zeroed by the allocator (fresh pages for a large event) rather than by
        // `resize`: a 482 KB event's buffer was otherwise cleared only to be overwritten.
        let mut bytes = vec![0u8; len.min(1 << 20)];
        stream.read_exact(&mut bytes)?;
        while bytes.len() < len {
            let from = bytes.len();
            bytes.resize(from + (len - from).min(from.max(1 << 20)), 0);
            stream.read_exact(&mut bytes[from..])?;
        }
        request.input.bytes = bytes;
        Ok(request)
    }

    /// Writes header and payload without joining them (vectored; a large payload takes
    /// several writes).
    pub fn write_to(&self, stream: &mut impl Write) -> io::Result<()> {
        let header = self.header();
        let payload = &self.input.bytes[..];
        let mut sent = 0;
        let total = header.len() + payload.len();
        while sent < total {
            let parts = if sent < header.len() {
                [io::IoSlice::new(&header[sent..]), io::IoSlice::new(payload)]
            } else {
                [io::IoSlice::new(&payload[sent - header.len()..]), io::IoSlice::new(&[])]
            };
            match stream.write_vectored(&parts) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        match self {
            Response::Retry => out.push(1),
            Response::Answered { exit_code, stdout, stderr } => {
                out.push(0);
                out.extend_from_slice(&exit_code.to_le_bytes());
                match stdout {
                    Some(s) => {
                        out.push(1);
                        put_bytes(&mut out, s.as_bytes());
                    }
                    None => out.push(0),
                }
                put_u64(&mut out, stderr.len() as u64);
                for line in stderr {
                    put_bytes(&mut out, line.as_bytes());
                }
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> io::Result<Response> {
        let mut c = Cursor(bytes);
        if c.take(4)? != MAGIC {
            return Err(invalid("not a chronicle response"));
        }
        if c.take(1)?[0] == 1 {
            return Ok(Response::Retry);
        }
        let mut code = [0u8; 4];
        code.copy_from_slice(c.take(4)?);
        let stdout = if c.take(1)?[0] == 1 { Some(c.text()?) } else { None };
        let lines = c.u64()?;
        let mut stderr = Vec::new();
        for _ in 0..lines.min(64) {
            stderr.push(c.text()?);
        }
        Ok(Response::Answered { exit_code: i32::from_le_bytes(code), stdout, stderr })
    }
}

/// What the client tells `chronicle-host hook --handover SPEC` about an event it read but the
/// resident host did not answer (the bytes themselves arrive on stdin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handover {
    pub started_unix_ns: i64,
    pub received_at_ns: i64,
    pub total_bytes: u64,
    pub truncated: bool,
    pub timed_out: bool,
    /// The server took the event and died or stalled (rather than handing it back).
    pub lost: bool,
    /// How long the client took to read stdin (the event's `hook.read`).
    pub read_ns: u64,
    pub invocation: InvocationId,
    /// The client reads [`END_MARK`]: once the answer is out, the host says so on stderr and
    /// lets go of its stdout and stderr, and the client relays the answer without waiting for
    /// the process to be torn down (unmapping a host's libraries and heap took 0.26-0.34 ms,
    /// and the pipes only closed after it). Flag 8, which hosts before it ignore.
    pub announce_end: bool,
    /// The client found no database and is making it from the template while this host starts
    /// ([`crate::newdb::create`]): the host waits for it to appear (briefly) rather than make
    /// its own. Flag 16, which hosts before it ignore (they make their own; a link never
    /// replaces a file, so one of the two is used).
    pub client_makes_db: bool,
}

/// The last line a handed-over host writes on stderr when it answered on purpose: this text,
/// then its exit code (`announce_end`).
pub const END_MARK: &str = "\u{1}chronicle-handover-end ";

/// Splits a handed-over host's stderr into what it said before [`END_MARK`] and the exit code
/// the mark announces; None unless the mark is the last line.
pub fn announced_end(stderr: &[u8]) -> Option<(&[u8], i32)> {
    let body = stderr.strip_suffix(b"\n")?;
    let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let code = std::str::from_utf8(body[start..].strip_prefix(END_MARK.as_bytes())?).ok()?.parse().ok()?;
    Some((&stderr[..start], code))
}

impl Handover {
    pub fn new(request: &Request, lost: bool) -> Handover {
        Handover {
            started_unix_ns: request.client_started_unix_ns,
            received_at_ns: request.received_at_ns,
            total_bytes: request.input.total_bytes,
            truncated: request.input.truncated,
            timed_out: request.input.timed_out,
            lost,
            read_ns: request.read_ns,
            invocation: request.invocation,
            announce_end: true,
            client_makes_db: false,
        }
    }

    pub fn format(&self) -> String {
        let flags = u8::from(self.truncated)
            | (u8::from(self.timed_out) << 1)
            | (u8::from(self.lost) << 2)
            | (u8::from(self.announce_end) << 3)
            | (u8::from(self.client_makes_db) << 4);
        format!("{}:{}:{}:{flags}:{}:{}", self.started_unix_ns, self.received_at_ns, self.total_bytes, self.read_ns, self.invocation.text())
    }

    pub fn parse(spec: &str) -> Option<Handover> {
        let mut parts = spec.split(':');
        let h = Handover {
            started_unix_ns: parts.next()?.parse().ok()?,
            received_at_ns: parts.next()?.parse().ok()?,
            total_bytes: parts.next()?.parse().ok()?,
            truncated: false,
            timed_out: false,
            lost: false,
            read_ns: 0,
            invocation: InvocationId::default(),
            announce_end: false,
            client_makes_db: false,
        };
        let flags: u8 = parts.next()?.parse().ok()?;
        // Absent in specs from clients older than these fields (a new id is made then).
        let read_ns = match parts.next() {
            Some(n) => n.parse().ok()?,
            None => 0,
        };
        let invocation = match parts.next() {
            Some(id) => InvocationId::parse(id)?,
            None => InvocationId::new(h.received_at_ns),
        };
        if parts.next().is_some() {
            return None;
        }
        let h = Handover { read_ns, invocation, ..h };
        Some(Handover {
            truncated: flags & 1 != 0,
            timed_out: flags & 2 != 0,
            lost: flags & 4 != 0,
            announce_end: flags & 8 != 0,
            client_makes_db: flags & 16 != 0,
            ..h
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip() {
        let r = Request {
            invocation: InvocationId { received_at_ns: 17, random: u64::MAX - 1 },
            input: RawInput { bytes: b"{\"a\":1}".to_vec(), total_bytes: 99, truncated: true, timed_out: false },
            received_at_ns: 17,
            client_started_unix_ns: -3,
            client_peak_rss_bytes: 4096,
            read_ns: 12,
        };
        let mut wire = Vec::new();
        r.write_to(&mut wire).unwrap();
        assert_eq!(wire.len(), Request::HEADER_LEN + r.input.bytes.len());
        let (header, mut rest) = wire.split_at(Request::HEADER_LEN);
        assert_eq!(Request::read_from(&mut rest, header).unwrap(), r);
        // Larger than the first read buffer: it grows as the bytes arrive.
        let big =
            Request { input: RawInput { bytes: (0..5 << 19).map(|i| i as u8).collect(), ..RawInput::default() }, ..Request::default() };
        let mut wire = Vec::new();
        big.write_to(&mut wire).unwrap();
        let (header, mut rest) = wire.split_at(Request::HEADER_LEN);
        assert_eq!(Request::read_from(&mut rest, header).unwrap(), big);
        let a = Response::Answered { exit_code: 2, stdout: Some("{}".into()), stderr: vec!["x".into(), String::new()] };
        assert_eq!(Response::decode(&a.encode()).unwrap(), a);
        let none = Response::Answered { exit_code: 0, stdout: None, stderr: vec![] };
        assert_eq!(Response::decode(&none.encode()).unwrap(), none);
        assert_eq!(Response::decode(&Response::Retry.encode()).unwrap(), Response::Retry);
    }

    #[test]
    fn handovers_round_trip() {
        let h = Handover {
            started_unix_ns: -5,
            received_at_ns: 7,
            total_bytes: 11,
            truncated: true,
            timed_out: false,
            lost: true,
            read_ns: 42,
            invocation: InvocationId { received_at_ns: 7, random: 0xdead_beef },
            announce_end: true,
            client_makes_db: true,
        };
        assert_eq!(Handover::parse(&h.format()), Some(h));
        let quiet = Handover { announce_end: false, client_makes_db: false, ..h };
        assert_eq!(Handover::parse(&quiet.format()), Some(quiet));
        assert_eq!(Handover::parse("1:2:3"), None);
        assert_eq!(Handover::parse("1:2:3:0:9:00000000000000070000000000000001:1"), None);
        assert_eq!(Handover::parse("1:2:3:0:9:not-an-id"), None);
        // From a client older than read_ns and the invocation id: a fresh id.
        let old = Handover::parse("1:2:3:4").unwrap();
        assert_eq!(
            (old.lost, old.read_ns, old.invocation.received_at_ns, old.announce_end, old.client_makes_db),
            (true, 0, 2, false, false)
        );
    }

    #[test]
    fn the_end_mark_is_read_only_as_the_last_line() {
        let said = format!("chronicle: a line\n{END_MARK}2\n");
        assert_eq!(announced_end(said.as_bytes()), Some((&b"chronicle: a line\n"[..], 2)));
        assert_eq!(announced_end(format!("{END_MARK}0\n").as_bytes()), Some((&b""[..], 0)));
        assert_eq!(announced_end(format!("{END_MARK}-1\n").as_bytes()), Some((&b""[..], -1)));
        // Something after it, a cut line, no code or no mark: not an announced end.
        assert_eq!(announced_end(format!("{END_MARK}0\nlater\n").as_bytes()), None);
        assert_eq!(announced_end(format!("{END_MARK}0").as_bytes()), None);
        assert_eq!(announced_end(format!("{END_MARK}\n").as_bytes()), None);
        assert_eq!(announced_end(b"chronicle-handover-end 0\n"), None);
        assert_eq!(announced_end(b""), None);
    }

    #[test]
    fn invocation_ids_are_distinct_and_round_trip_as_text() {
        let a = InvocationId::new(5);
        let b = InvocationId::new(5);
        assert_ne!(a, b);
        assert_eq!(a.text().len(), 32);
        assert_eq!(InvocationId::parse(&a.text()), Some(a));
        assert_eq!(InvocationId::parse("xyz"), None);
    }

    #[test]
    fn garbage_and_truncated_messages_are_errors() {
        assert!(Request::decode_header(&[b'H'; Request::HEADER_LEN]).is_err());
        assert!(Request::decode_header(b"CHR1").is_err());
        // A payload shorter than announced, and an absurd announced length.
        let r = Request { input: RawInput { bytes: b"{}".to_vec(), ..RawInput::default() }, ..Request::default() };
        let mut wire = Vec::new();
        r.write_to(&mut wire).unwrap();
        let (header, rest) = wire.split_at(Request::HEADER_LEN);
        assert!(Request::read_from(&mut &rest[..1], header).is_err());
        let mut huge = header.to_vec();
        huge[Request::HEADER_LEN - 8..].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Request::read_from(&mut &rest[..], &huge).is_err());
        let a = Response::Answered { exit_code: 0, stdout: Some("x".repeat(10)), stderr: vec![] }.encode();
        assert!(Response::decode(&a[..a.len() - 4]).is_err());
    }
}
