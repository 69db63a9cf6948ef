// SPDX-License-Identifier: GPL-2.0
//! The virtio-gpio device model: lines, interrupts, faults and counters.
//!
//! It knows nothing about vhost-user: buffers come in as [`Chain`]s taken off
//! a virtqueue and go out as [`Completion`]s that the caller writes back and
//! marks used. Time is passed in, so the rules can be tested step by step.

use std::collections::{BinaryHeap, VecDeque};
use std::cmp::Reverse;
use std::time::{Duration, Instant};

use crate::proto::*;

/// A descriptor chain as the device sees it: what the driver wrote, and where
/// the device may write its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub head: u16,
    pub readable: Vec<u8>,
    pub writable: Vec<(u64, u32)>,
}

impl Chain {
    pub fn wcap(&self) -> u32 {
        self.writable.iter().map(|w| w.1).sum()
    }
}

pub const REQUESTQ: usize = 0;
pub const EVENTQ: usize = 1;

/// An answer: `data` is written into the chain's writable part (truncated to
/// fit) and the chain is marked used with `used_len`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub queue: usize,
    pub chain: Chain,
    pub data: Vec<u8>,
    pub used_len: u32,
}

/// Which messages a fault applies to.
#[derive(Debug, Clone, Default)]
pub struct Rule {
    pub msg: Option<u16>,
    pub line: Option<u16>,
    /// Probability in parts per million (1_000_000 = always).
    pub ppm: u32,
    /// Number of times it still applies; None = unlimited.
    pub count: Option<u32>,
    /// Matching messages still to let through before it applies.
    pub skip: u32,
}

impl Rule {
    pub fn always() -> Self {
        Rule { ppm: 1_000_000, ..Default::default() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NamesFault {
    #[default]
    None,
    Unterminated,
    Short,
    Duplicate,
    NonAscii,
}

#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub err: Vec<Rule>,
    pub drop: Vec<Rule>,
    pub delay: Vec<(Rule, Duration)>,
    /// Held in the line's queue (its later answers wait behind it) until
    /// `release`: an answer as late as a test needs, whatever its speed.
    pub hold: Vec<Rule>,
    pub short: Vec<Rule>,
    pub long: Vec<Rule>,
    pub ev_short: Vec<Rule>,
    pub ev_long: Vec<Rule>,
    /// A line's eventq buffer is answered INVALID as soon as it comes,
    /// although the line has a trigger type (a broken device: the driver
    /// must not requeue it for ever).
    pub ev_invalid: Vec<Rule>,
    /// A line's eventq buffer is answered VALID as soon as it comes while
    /// the line has a trigger type: an interrupt storm (the driver must
    /// not spend it in one interrupt, however long it lasts).
    pub ev_storm: Vec<Rule>,
    pub names: NamesFault,
    pub ngpio0: bool,
    pub reverse: bool,
    /// Disabling a line's interrupt returns its buffer VALID, not INVALID:
    /// an event for a line the driver no longer has enabled.
    pub ev_stale: bool,
    /// Fuzz mode until then: answers mangled at random (see `Device::mangle`).
    pub fuzz_until: Option<Instant>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct LineStats {
    pub requests: u64,
    pub events: u64,
    pub latched: u64,
    pub invalid: u64,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Requests per message type (index 0: unknown type).
    pub msgs: [u64; 7],
    /// Answers with status ERR.
    pub errors: u64,
    /// eventq buffers received.
    pub evbufs: u64,
    pub events: u64,
    pub latched: u64,
    pub invalid: u64,
    /// Requests that were malformed (short, bad gpio, bad value).
    pub bad: u64,
    /// SET_IRQ_TYPE from one trigger type to another without none between.
    pub type_without_none: u64,
    /// An eventq buffer queued for a line that already had one.
    pub double_queue: u64,
    /// Requests never answered because of a drop fault.
    pub dropped: u64,
}

#[derive(Debug)]
struct Pending {
    chain: Chain,
    msg: u16,
    gpio: u16,
    value: u32,
    due: Instant,
    /// Held by a hold fault: not answered, whatever `due` says, until released.
    held: bool,
    /// Set when the answer's used length is to be wrong.
    len_fault: Option<bool>,
}

/// A paced edge train: the next flip comes `period` after the last one at
/// the earliest, and only once the driver is ready for it (see
/// [`Device::paced_ready`]), so that no edge is latched into another
/// however slowly the driver takes them.
#[derive(Debug)]
struct Paced {
    left: u32,
    period: Duration,
    next: Instant,
    /// The line's eventq buffer count at the last flip.
    bufs_at_flip: u64,
    /// Paced on reads too ([`Device::edges_paced`]).
    read: bool,
    /// The line's GET_VALUE count at the last flip (none before the first).
    reads_at_flip: Option<u64>,
    /// A step found the driver not ready: resume when it is.
    waiting: bool,
}

#[derive(Debug, Default)]
pub struct Line {
    pub name: String,
    pub dir: u8,
    pub out_value: u8,
    /// The level the outside world puts on the line.
    pub level: u8,
    pub irq_type: u8,
    pub latched: bool,
    pub held: Option<Chain>,
    /// eventq buffers the driver gave for this line, ever.
    bufs_in: u64,
    /// GET_VALUE requests answered for this line, ever.
    reads: u64,
    /// When the line's last event went to the driver, until its buffer is
    /// back.
    pub delivered_at: Option<Instant>,
    pending: VecDeque<Pending>,
    paced: Option<Paced>,
    pub stats: LineStats,
}

impl Line {
    fn value(&self) -> u8 {
        if self.dir == DIR_OUT {
            self.out_value
        } else {
            self.level
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub ngpio: u16,
    /// One name per line; "" is an unnamed line. Empty vector: no names block.
    pub names: Vec<String>,
    pub irq: bool,
    /// Offer VIRTIO_F_ACCESS_PLATFORM: the guest then maps every buffer
    /// through its DMA API (no IOMMU here: addresses stay guest-physical).
    pub access_platform: bool,
    pub levels: Vec<u8>,
    /// (output line, input line) pairs: the output drives the input.
    pub wires: Vec<(u16, u16)>,
    pub seed: u64,
}

impl Config {
    pub fn new(ngpio: u16) -> Self {
        Config {
            ngpio,
            names: (0..ngpio).map(|i| format!("vgpio{i}")).collect(),
            irq: true,
            access_platform: false,
            levels: Vec::new(),
            wires: Vec::new(),
            seed: 0x5eed_1234_abcd_0001,
        }
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// Check delayed answers of a line.
    Line(u16),
    /// Flip a line's input level (one step of an edge train).
    Toggle(u16),
    /// The next step of a line's paced edge train.
    Paced(u16),
    /// The fuzz mode's time is up.
    FuzzEnd,
}

/// xorshift64*: deterministic for a given seed, good enough for fault odds.
#[derive(Debug, Clone, Copy)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

pub struct Device {
    pub cfg: Config,
    pub lines: Vec<Line>,
    pub faults: Faults,
    pub stats: Stats,
    pub rng: Rng,
    timers: BinaryHeap<Reverse<(Instant, u64, Timer)>>,
    seq: u64,
    /// Requests that a drop fault swallowed; kept so they are never reused.
    dropped: Vec<Chain>,
    /// Lines with a paced edge train.
    paced_lines: Vec<u16>,
    /// How long each event's eventq buffer stayed with the driver: from the
    /// event to the buffer's return (microseconds; the first
    /// [`MAX_CYCLES`] since the counters were reset). An edge that comes
    /// while the line has no buffer is latched, and a second one is merged
    /// into it: this is what bounds the edge rate the driver takes without
    /// a loss.
    pub cycles: Vec<u32>,
}

/// How many event cycles [`Device::cycles`] keeps.
pub const MAX_CYCLES: usize = 100_000;

impl Device {
    pub fn new(cfg: Config) -> Self {
        let lines = (0..cfg.ngpio as usize)
            .map(|i| Line {
                name: cfg.names.get(i).cloned().unwrap_or_default(),
                level: cfg.levels.get(i).copied().unwrap_or(0),
                ..Default::default()
            })
            .collect();
        Device {
            rng: Rng::new(cfg.seed),
            cfg,
            lines,
            faults: Faults::default(),
            stats: Stats::default(),
            timers: BinaryHeap::new(),
            cycles: Vec::new(),
            seq: 0,
            dropped: Vec::new(),
            paced_lines: Vec::new(),
        }
    }

    pub fn ngpio(&self) -> u16 {
        self.cfg.ngpio
    }

    /// Give the device `n` lines (for a driver bound after this): lines
    /// beyond the old count are new, named as line 0 is with their own
    /// number ("d1l0" -> "d1l70000"), wires to lines that go are cut.
    pub fn resize(&mut self, n: u16) {
        let prefix = self
            .lines
            .first()
            .and_then(|l| l.name.strip_suffix('0'))
            .unwrap_or("")
            .to_string();
        let old = self.lines.len();
        self.lines.truncate(n as usize);
        for i in old..n as usize {
            let name = if prefix.is_empty() { String::new() } else { format!("{prefix}{i}") };
            self.lines.push(Line { name, ..Default::default() });
        }
        self.cfg.ngpio = n;
        self.cfg.wires.retain(|&(o, i)| o < n && i < n);
        self.paced_lines.retain(|&l| l < n);
    }

    /// Does a rule in `rules` apply to this message? Consumes one use of it.
    fn hit(rules: &mut [Rule], rng: &mut Rng, msg: u16, line: u16) -> bool {
        for r in rules.iter_mut() {
            if r.msg.is_some_and(|m| m != msg) || r.line.is_some_and(|l| l != line) || r.count == Some(0) {
                continue;
            }
            if r.skip > 0 {
                r.skip -= 1;
                continue;
            }
            if r.ppm < 1_000_000 && rng.below(1_000_000) as u32 >= r.ppm {
                continue;
            }
            if let Some(c) = r.count.as_mut() {
                *c -= 1;
            }
            return true;
        }
        false
    }

    fn fault(&mut self, which: fn(&mut Faults) -> &mut Vec<Rule>, msg: u16, line: u16) -> bool {
        Self::hit(which(&mut self.faults), &mut self.rng, msg, line)
    }

    fn delay_for(&mut self, msg: u16, line: u16) -> Option<Duration> {
        let rng = &mut self.rng;
        self.faults
            .delay
            .iter_mut()
            .find_map(|(r, d)| Self::hit(std::slice::from_mut(r), rng, msg, line).then_some(*d))
    }

    fn schedule(&mut self, at: Instant, t: Timer) {
        self.seq += 1;
        self.timers.push(Reverse((at, self.seq, t)));
    }

    /// When [`Device::tick`] wants to run next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    // ---- config space ----

    /// The names block as the device (with its faults) serves it.
    pub fn names_block(&self) -> Vec<u8> {
        if self.cfg.names.is_empty() {
            return Vec::new();
        }
        let mut names: Vec<Vec<u8>> = self.lines.iter().map(|l| l.name.clone().into_bytes()).collect();
        match self.faults.names {
            NamesFault::Duplicate if names.len() >= 2 => names[1] = names[0].clone(),
            NamesFault::NonAscii if !names.is_empty() => names[0].extend_from_slice(&[0xc3, 0xa9]),
            _ => {}
        }
        let mut block = Vec::new();
        for n in names {
            block.extend_from_slice(&n);
            block.push(0);
        }
        match self.faults.names {
            NamesFault::Unterminated => {
                if let Some(b) = block.last_mut() {
                    *b = b'X';
                }
            }
            NamesFault::Short => block.truncate(block.len() / 2),
            _ => {}
        }
        block
    }

    /// The config space: le16 ngpio, u8 padding[2], le32 gpio_names_size.
    pub fn config_space(&self) -> [u8; 8] {
        let ngpio = if self.faults.ngpio0 { 0 } else { self.cfg.ngpio };
        let size = self.names_block().len() as u32;
        let mut c = [0u8; 8];
        c[0..2].copy_from_slice(&ngpio.to_le_bytes());
        c[4..8].copy_from_slice(&size.to_le_bytes());
        c
    }

    // ---- requestq ----

    /// Take requests off the requestq; returns the answers that are due now.
    pub fn on_requests(&mut self, chains: Vec<Chain>, now: Instant) -> Vec<Completion> {
        let mut out = Vec::new();
        for chain in chains {
            let Some((msg, gpio, value)) = parse_request(&chain.readable) else {
                self.stats.bad += 1;
                self.stats.errors += 1;
                out.push(answer(chain, vec![STATUS_ERR, 0], RESPONSE_SIZE));
                continue;
            };
            self.stats.msgs[if (1..=6).contains(&msg) { msg as usize } else { 0 }] += 1;
            let line = if msg == MSG_GET_LINE_NAMES { 0 } else { gpio };
            if !(1..=6).contains(&msg) || line >= self.cfg.ngpio {
                self.stats.bad += 1;
                self.stats.errors += 1;
                out.push(answer(chain, vec![STATUS_ERR, 0], RESPONSE_SIZE));
                continue;
            }
            self.lines[line as usize].stats.requests += 1;
            if self.fault(|f| &mut f.drop, msg, line) {
                self.stats.dropped += 1;
                self.dropped.push(chain);
                continue;
            }
            let len_fault = if self.fault(|f| &mut f.short, msg, line) {
                Some(false)
            } else if self.fault(|f| &mut f.long, msg, line) {
                Some(true)
            } else {
                None
            };
            let delay = self.delay_for(msg, line);
            let held = self.fault(|f| &mut f.hold, msg, line);
            let due = now + delay.unwrap_or_default();
            let l = &mut self.lines[line as usize];
            let idle = l.pending.is_empty();
            l.pending.push_back(Pending { chain, msg, gpio, value, due, held, len_fault });
            if delay.is_some() || !idle {
                let at = self.lines[line as usize].pending.back().map(|p| p.due).unwrap_or(due);
                self.schedule(at, Timer::Line(line));
            }
            if idle {
                self.service_line(line, now, &mut out);
            }
        }
        if self.faults.reverse {
            reverse_across_lines(&mut out);
        }
        self.mangle(&mut out, now);
        self.resume_paced(now);
        out
    }

    /// Answer the line's waiting requests that are due, in order.
    fn service_line(&mut self, line: u16, now: Instant, out: &mut Vec<Completion>) {
        loop {
            let l = &mut self.lines[line as usize];
            match l.pending.front() {
                Some(p) if p.due <= now && !p.held => {}
                _ => break,
            }
            let p = l.pending.pop_front().unwrap();
            let mut c = self.execute(p.msg, p.gpio, p.value, p.chain, out);
            match p.len_fault {
                Some(false) => c.used_len = c.used_len.saturating_sub(1),
                Some(true) => c.used_len += 16,
                None => {}
            }
            out.push(c);
        }
    }

    /// Carry out one request; interrupts it causes go to `out` too.
    fn execute(&mut self, msg: u16, gpio: u16, value: u32, chain: Chain, out: &mut Vec<Completion>) -> Completion {
        let irq_allowed = self.cfg.irq;
        let line = gpio as usize;
        let ok = |v: u8| (vec![STATUS_OK, v], RESPONSE_SIZE);
        let err = (vec![STATUS_ERR, 0], RESPONSE_SIZE);
        let forced_err = self.fault(|f| &mut f.err, msg, if msg == MSG_GET_LINE_NAMES { 0 } else { gpio });
        let (data, len) = if forced_err {
            err
        } else {
            match msg {
                MSG_GET_LINE_NAMES => {
                    let block = self.names_block();
                    if gpio != 0 || value != 0 || block.is_empty() {
                        err
                    } else {
                        let mut d = vec![STATUS_OK];
                        d.extend_from_slice(&block);
                        let n = d.len() as u32;
                        (d, n)
                    }
                }
                MSG_GET_DIRECTION => ok(self.lines[line].dir),
                MSG_SET_DIRECTION => match value as u8 {
                    _ if value > 0xff => err,
                    DIR_NONE => {
                        self.deactivate(gpio, out);
                        ok(0)
                    }
                    DIR_OUT => {
                        self.lines[line].dir = DIR_OUT;
                        self.drive(gpio, out);
                        ok(0)
                    }
                    DIR_IN => {
                        self.lines[line].dir = DIR_IN;
                        ok(0)
                    }
                    _ => err,
                },
                MSG_GET_VALUE => {
                    self.lines[line].reads += 1;
                    ok(self.lines[line].value())
                }
                MSG_SET_VALUE => {
                    if value > 1 {
                        err
                    } else {
                        self.lines[line].out_value = value as u8;
                        if self.lines[line].dir == DIR_OUT {
                            self.drive(gpio, out);
                        }
                        ok(0)
                    }
                }
                MSG_SET_IRQ_TYPE => {
                    if !irq_allowed || !valid_irq_type(value) || self.lines[line].dir == DIR_OUT && value != 0 {
                        err
                    } else {
                        self.set_irq_type(gpio, value as u8, out);
                        ok(0)
                    }
                }
                _ => err,
            }
        };
        let c = if data[0] == STATUS_ERR && msg == MSG_GET_LINE_NAMES {
            // An error answer to GET_LINE_NAMES is just the status byte.
            answer(chain, vec![STATUS_ERR], 1)
        } else {
            answer(chain, data, len)
        };
        if c.data.first() == Some(&STATUS_ERR) {
            self.stats.errors += 1;
        }
        c
    }

    fn deactivate(&mut self, gpio: u16, out: &mut Vec<Completion>) {
        self.set_irq_type(gpio, IRQ_NONE, out);
        let l = &mut self.lines[gpio as usize];
        l.dir = DIR_NONE;
        l.out_value = 0;
    }

    fn set_irq_type(&mut self, gpio: u16, t: u8, out: &mut Vec<Completion>) {
        let l = &mut self.lines[gpio as usize];
        if t == IRQ_NONE {
            l.latched = false;
            if let Some(c) = l.held.take() {
                if self.faults.ev_stale {
                    l.stats.events += 1;
                    self.stats.events += 1;
                    out.push(answer_event(c, IRQ_STATUS_VALID));
                } else {
                    l.stats.invalid += 1;
                    self.stats.invalid += 1;
                    out.push(answer_event(c, IRQ_STATUS_INVALID));
                }
            }
        } else if l.irq_type != IRQ_NONE && l.irq_type != t {
            self.stats.type_without_none += 1;
        }
        l.irq_type = t;
        self.check_event(gpio, out);
    }

    /// An output line's value changed or it became an output: drive the
    /// lines wired to it.
    fn drive(&mut self, gpio: u16, out: &mut Vec<Completion>) {
        let v = self.lines[gpio as usize].out_value;
        let targets: Vec<u16> = self.cfg.wires.iter().filter(|w| w.0 == gpio).map(|w| w.1).collect();
        for t in targets {
            self.set_level(t, v, out);
        }
    }

    // ---- outside world ----

    /// Put a level on a line from the outside; may raise an interrupt.
    pub fn set_level(&mut self, gpio: u16, v: u8, out: &mut Vec<Completion>) {
        let l = &mut self.lines[gpio as usize];
        if l.level == v {
            return;
        }
        l.level = v;
        if l.dir == DIR_OUT || l.irq_type == IRQ_NONE {
            return;
        }
        let rising = v != 0;
        let edge = match l.irq_type {
            IRQ_EDGE_RISING => rising,
            IRQ_EDGE_FALLING => !rising,
            IRQ_EDGE_BOTH => true,
            _ => false,
        };
        if edge {
            if l.held.is_some() {
                self.deliver(gpio, out);
            } else {
                l.latched = true;
                l.stats.latched += 1;
                self.stats.latched += 1;
            }
        } else {
            self.check_event(gpio, out);
        }
    }

    /// Flip a line's level `count` times, one flip every `period`.
    pub fn edges(&mut self, gpio: u16, count: u32, period: Duration, now: Instant, out: &mut Vec<Completion>) {
        if period.is_zero() {
            for _ in 0..count {
                let v = 1 - self.lines[gpio as usize].level;
                self.set_level(gpio, v, out);
            }
            return;
        }
        for i in 0..count {
            self.schedule(now + period * (i + 1), Timer::Toggle(gpio));
        }
    }

    /// A paced edge train: `count` flips, each `period` after the last at
    /// the earliest and only once the driver is ready for it (it gave the
    /// device the line's eventq buffer back, or has no interrupt enabled on
    /// the line). It replaces the line's paced train still running, if any.
    /// With `read`, the driver is ready only once it has also read the
    /// line since the last flip: for a consumer that reads the line for
    /// each event (gpiolib's character device on a line with both edges,
    /// to tell a rising from a falling one), for a driver that could give
    /// the buffer back before that read (the Rust driver did, d47f081 to
    /// f0fbb08).
    pub fn edges_paced(&mut self, gpio: u16, count: u32, period: Duration, now: Instant, read: bool) {
        let bufs = self.lines[gpio as usize].bufs_in;
        self.timers.retain(|Reverse((_, _, t))| *t != Timer::Paced(gpio));
        self.paced_lines.retain(|&l| l != gpio);
        self.lines[gpio as usize].paced = None;
        if count == 0 {
            return;
        }
        let next = now + period;
        self.lines[gpio as usize].paced =
            Some(Paced { left: count, period, next, bufs_at_flip: bufs, read, reads_at_flip: None, waiting: false });
        self.paced_lines.push(gpio);
        self.schedule(next, Timer::Paced(gpio));
    }

    /// Is the driver ready for the next edge of a paced train on this line:
    /// the device holds the line's eventq buffer, or got one since the last
    /// flip (a level still active takes it again at once), or the line has
    /// no interrupt enabled (then the train runs on the clock)?
    fn paced_ready(&self, gpio: u16) -> bool {
        let l = &self.lines[gpio as usize];
        let since = l.paced.as_ref().is_some_and(|p| l.bufs_in > p.bufs_at_flip);
        let read = l.paced.as_ref().is_none_or(|p| !p.read || p.reads_at_flip.is_none_or(|r| l.reads > r));
        let no_irq = l.irq_type == IRQ_NONE || l.dir == DIR_OUT || !self.cfg.irq;
        no_irq || ((l.held.is_some() || since) && read)
    }

    /// One step of a line's paced train, if it is due and the driver ready.
    fn paced_step(&mut self, gpio: u16, now: Instant, out: &mut Vec<Completion>) {
        let ready = self.paced_ready(gpio);
        let Some(p) = self.lines[gpio as usize].paced.as_mut() else {
            return;
        };
        if p.next > now {
            return; // an earlier train's timer; this one's is scheduled
        }
        if !ready {
            p.waiting = true;
            return;
        }
        p.waiting = false;
        p.left -= 1;
        p.next = now + p.period;
        let (left, next) = (p.left, p.next);
        let v = 1 - self.lines[gpio as usize].level;
        self.set_level(gpio, v, out);
        let l = &mut self.lines[gpio as usize];
        if left == 0 {
            l.paced = None;
            self.paced_lines.retain(|&x| x != gpio);
        } else {
            if let Some(p) = l.paced.as_mut() {
                p.bufs_at_flip = l.bufs_in;
                if p.read {
                    p.reads_at_flip = Some(l.reads);
                }
            }
            self.schedule(next, Timer::Paced(gpio));
        }
    }

    /// Wake the paced trains that wait for a driver that is now ready.
    fn resume_paced(&mut self, now: Instant) {
        if self.paced_lines.is_empty() {
            return;
        }
        for gpio in self.paced_lines.clone() {
            let ready = self.paced_ready(gpio);
            let at = match self.lines[gpio as usize].paced.as_mut() {
                Some(p) if p.waiting && ready => {
                    p.waiting = false;
                    p.next.max(now)
                }
                _ => continue,
            };
            self.schedule(at, Timer::Paced(gpio));
        }
    }

    /// Cancel the line's edge trains still to come; returns how many flips.
    pub fn stop_edges(&mut self, gpio: u16) -> usize {
        let left = self.edges_left(gpio);
        self.timers
            .retain(|Reverse((_, _, t))| *t != Timer::Toggle(gpio) && *t != Timer::Paced(gpio));
        self.lines[gpio as usize].paced = None;
        self.paced_lines.retain(|&l| l != gpio);
        left
    }

    /// Flips still to come on the line, of all its edge trains.
    pub fn edges_left(&self, gpio: u16) -> usize {
        let timed = self.timers.iter().filter(|Reverse((_, _, t))| *t == Timer::Toggle(gpio)).count();
        timed + self.lines[gpio as usize].paced.as_ref().map_or(0, |p| p.left as usize)
    }

    /// Return a line's held eventq buffer VALID, whatever its state.
    pub fn spurious(&mut self, gpio: u16, out: &mut Vec<Completion>) -> bool {
        if self.lines[gpio as usize].held.is_some() {
            self.deliver(gpio, out);
            true
        } else {
            false
        }
    }

    /// Run what is due: delayed answers and edge-train steps.
    pub fn tick(&mut self, now: Instant) -> Vec<Completion> {
        let mut out = Vec::new();
        while let Some(Reverse((at, _, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Reverse((_, _, t)) = self.timers.pop().unwrap();
            match t {
                Timer::Line(l) => self.service_line(l, now, &mut out),
                Timer::Toggle(l) => {
                    let v = 1 - self.lines[l as usize].level;
                    self.set_level(l, v, &mut out);
                }
                Timer::Paced(l) => self.paced_step(l, now, &mut out),
                Timer::FuzzEnd => {
                    if self.faults.fuzz_until.is_some_and(|t| t <= now) {
                        self.faults.fuzz_until = None;
                        self.release_dropped(now, &mut out);
                    }
                }
            }
        }
        self.resume_paced(now);
        self.mangle(&mut out, now);
        if self.faults.reverse {
            reverse_across_lines(&mut out);
        }
        out
    }

    // ---- eventq ----

    fn level_active(l: &Line) -> bool {
        (l.irq_type == IRQ_LEVEL_HIGH && l.level != 0) || (l.irq_type == IRQ_LEVEL_LOW && l.level == 0)
    }

    /// Deliver what is pending for a line that has a buffer: a latched edge
    /// or an active level.
    fn check_event(&mut self, gpio: u16, out: &mut Vec<Completion>) {
        let l = &mut self.lines[gpio as usize];
        if l.held.is_none() || l.dir == DIR_OUT || l.irq_type == IRQ_NONE {
            return;
        }
        if l.latched || Self::level_active(l) {
            l.latched = false;
            self.deliver(gpio, out);
        }
    }

    fn deliver(&mut self, gpio: u16, out: &mut Vec<Completion>) {
        let Some(c) = self.lines[gpio as usize].held.take() else {
            return;
        };
        self.lines[gpio as usize].stats.events += 1;
        self.lines[gpio as usize].delivered_at = Some(Instant::now());
        self.stats.events += 1;
        let mut a = answer_event(c, IRQ_STATUS_VALID);
        if self.fault(|f| &mut f.ev_short, 0, gpio) {
            a.used_len = 0;
        } else if self.fault(|f| &mut f.ev_long, 0, gpio) {
            a.used_len = 8;
        }
        out.push(a);
    }

    /// Take buffers off the eventq: each unmasks its line.
    pub fn on_events(&mut self, chains: Vec<Chain>) -> Vec<Completion> {
        let mut out = Vec::new();
        for chain in chains {
            let gpio = (chain.readable.len() >= IRQ_REQUEST_SIZE)
                .then(|| u16::from_le_bytes([chain.readable[0], chain.readable[1]]))
                .filter(|&g| g < self.cfg.ngpio && self.cfg.irq);
            let Some(gpio) = gpio else {
                self.stats.bad += 1;
                self.stats.invalid += 1;
                out.push(answer_event(chain, IRQ_STATUS_INVALID));
                continue;
            };
            self.stats.evbufs += 1;
            if self.lines[gpio as usize].irq_type != IRQ_NONE && self.fault(|f| &mut f.ev_invalid, 0, gpio) {
                self.stats.invalid += 1;
                self.lines[gpio as usize].stats.invalid += 1;
                out.push(answer_event(chain, IRQ_STATUS_INVALID));
                continue;
            }
            if self.lines[gpio as usize].held.is_some() {
                self.stats.double_queue += 1;
                self.stats.invalid += 1;
                self.lines[gpio as usize].stats.invalid += 1;
                out.push(answer_event(chain, IRQ_STATUS_INVALID));
                continue;
            }
            if let Some(t) = self.lines[gpio as usize].delivered_at.take() {
                if self.cycles.len() < MAX_CYCLES {
                    let us = t.elapsed().as_micros();
                    self.cycles.push(u32::try_from(us).unwrap_or(u32::MAX));
                }
            }
            self.lines[gpio as usize].held = Some(chain);
            self.lines[gpio as usize].bufs_in += 1;
            if self.lines[gpio as usize].irq_type != IRQ_NONE && self.fault(|f| &mut f.ev_storm, 0, gpio) {
                self.lines[gpio as usize].latched = true;
            }
            self.check_event(gpio, &mut out);
        }
        let now = Instant::now();
        self.resume_paced(now);
        self.mangle(&mut out, now);
        out
    }

    /// The driver reset the device: forget all buffers and line settings.
    /// The outside world (levels, wires) and the faults stay.
    pub fn reset(&mut self) {
        for l in &mut self.lines {
            l.dir = DIR_NONE;
            l.out_value = 0;
            l.irq_type = IRQ_NONE;
            l.latched = false;
            l.held = None;
            l.delivered_at = None;
            l.pending.clear();
        }
        self.dropped.clear();
        self.timers.retain(|Reverse((_, _, t))| matches!(t, Timer::Toggle(_) | Timer::Paced(_) | Timer::FuzzEnd));
    }

    /// Start the fuzz mode for `d`: until then every answer may be mangled.
    pub fn fuzz(&mut self, d: Duration, now: Instant) {
        self.faults.fuzz_until = Some(now + d);
        self.schedule(now + d, Timer::FuzzEnd);
    }

    /// The fuzz mode: about half the answers leave as they are; the others
    /// get a random status, random bytes, a random or absurd used length,
    /// or (requestq only) are never answered until the fuzz mode ends. The
    /// answers leave in random order, and now and then a held eventq buffer
    /// comes back at once with a random status.
    fn mangle(&mut self, out: &mut Vec<Completion>, now: Instant) {
        if !self.faults.fuzz_until.is_some_and(|t| now < t) {
            return;
        }
        let mut kept = Vec::with_capacity(out.len() + 1);
        for mut c in out.drain(..) {
            let cap = c.chain.wcap() as u64;
            match self.rng.below(16) {
                0..=7 => {}
                8 if c.queue == REQUESTQ => {
                    self.stats.dropped += 1;
                    self.dropped.push(c.chain);
                    continue;
                }
                8 | 9 => {
                    if let Some(s) = c.data.first_mut() {
                        *s = self.rng.below(4) as u8;
                    }
                }
                10 | 11 => c.used_len = self.rng.below(cap + 9) as u32,
                12 => c.used_len = self.rng.next() as u32,
                13 | 14 => c.data.iter_mut().for_each(|b| *b = self.rng.next() as u8),
                _ => {
                    c.data.truncate(self.rng.below(c.data.len() as u64 + 1) as usize);
                    c.used_len = c.data.len() as u32;
                }
            }
            kept.push(c);
        }
        for i in (1..kept.len()).rev() {
            kept.swap(i, self.rng.below(i as u64 + 1) as usize);
        }
        if self.cfg.ngpio > 0 && self.rng.below(8) == 0 {
            let l = self.rng.below(self.cfg.ngpio as u64) as usize;
            if let Some(c) = self.lines[l].held.take() {
                kept.push(answer_event(c, self.rng.below(4) as u8));
            }
        }
        *out = kept;
    }

    /// Forget the eventq buffers only (the eventq was stopped).
    pub fn reset_eventq(&mut self) {
        for l in &mut self.lines {
            l.held = None;
            l.delivered_at = None;
        }
    }

    pub fn pending(&self, gpio: u16) -> usize {
        self.lines[gpio as usize].pending.len()
    }

    #[cfg(test)]
    pub fn dropped_count(&self) -> usize {
        self.dropped.len()
    }

    /// Requests the device holds unanswered: swallowed by drop faults, or
    /// held by hold faults.
    pub fn held_count(&self) -> usize {
        self.dropped.len() + self.lines.iter().map(|l| l.pending.iter().filter(|p| p.held).count()).sum::<usize>()
    }

    /// Answer the requests that drop faults swallowed, as if they had just
    /// arrived (drop rules do not apply to them again). Returns how many.
    pub fn release_dropped(&mut self, now: Instant, out: &mut Vec<Completion>) -> usize {
        self.release_dropped_of(None, now, out)
    }

    /// `release_dropped` for the requests of one line (GET_LINE_NAMES is
    /// line 0's, as for faults), or of all.
    fn release_dropped_of(&mut self, line: Option<u16>, now: Instant, out: &mut Vec<Completion>) -> usize {
        let (chains, keep): (Vec<Chain>, Vec<Chain>) = std::mem::take(&mut self.dropped).into_iter().partition(|c| {
            line.is_none()
                || parse_request(&c.readable)
                    .map(|(msg, gpio, _)| if msg == MSG_GET_LINE_NAMES { 0 } else { gpio })
                    == line
        });
        self.dropped = keep;
        let n = chains.len();
        let rules = std::mem::take(&mut self.faults.drop);
        out.extend(self.on_requests(chains, now));
        self.faults.drop = rules;
        n
    }

    /// Answer now the requests the device holds (drop and hold faults), of
    /// one line or of all: a late answer, but a valid one. Requests held by
    /// a hold fault are answered in their line's order, each carried out
    /// now, and the requests queued behind them follow. Returns how many
    /// held requests were released.
    pub fn release(&mut self, line: Option<u16>, now: Instant, out: &mut Vec<Completion>) -> usize {
        let mut n = 0;
        for l in 0..self.cfg.ngpio {
            if line.is_some_and(|x| x != l) {
                continue;
            }
            let mut any = false;
            for p in self.lines[l as usize].pending.iter_mut().filter(|p| p.held) {
                p.held = false;
                n += 1;
                any = true;
            }
            if any {
                self.service_line(l, now, out);
            }
        }
        n + self.release_dropped_of(line, now, out)
    }
}

fn parse_request(r: &[u8]) -> Option<(u16, u16, u32)> {
    if r.len() < REQUEST_SIZE {
        return None;
    }
    Some((
        u16::from_le_bytes([r[0], r[1]]),
        u16::from_le_bytes([r[2], r[3]]),
        u32::from_le_bytes([r[4], r[5], r[6], r[7]]),
    ))
}

fn answer(chain: Chain, data: Vec<u8>, len: u32) -> Completion {
    let cap = chain.wcap();
    let used_len = len.min(cap);
    let mut data = data;
    if (cap as usize) < data.len() {
        // The driver's buffer is too small for the answer: say so.
        data.truncate(cap as usize);
        if let Some(s) = data.first_mut() {
            *s = STATUS_ERR;
        }
    }
    Completion { queue: REQUESTQ, chain, data, used_len }
}

fn answer_event(chain: Chain, status: u8) -> Completion {
    let used_len = IRQ_RESPONSE_SIZE.min(chain.wcap());
    Completion { queue: EVENTQ, chain, data: vec![status], used_len }
}

/// The out-of-order mode: answers for different lines come back in the
/// reverse order of their lines' first answer; a line's own answers keep
/// their order. eventq answers stay where they are, relative to each other.
fn reverse_across_lines(out: &mut [Completion]) {
    let key = |c: &Completion| -> Option<u16> {
        (c.queue == REQUESTQ && c.chain.readable.len() >= 4)
            .then(|| u16::from_le_bytes([c.chain.readable[2], c.chain.readable[3]]))
    };
    let mut first: Vec<(u16, usize)> = Vec::new();
    for (i, c) in out.iter().enumerate() {
        if let Some(k) = key(c) {
            if !first.iter().any(|f| f.0 == k) {
                first.push((k, i));
            }
        }
    }
    // The line seen last comes first; eventq answers before all. A stable
    // sort keeps each line's own answers in order.
    let rank = |c: &Completion| -> usize {
        key(c)
            .and_then(|k| first.iter().find(|f| f.0 == k).map(|f| usize::MAX - f.1))
            .unwrap_or(0)
    };
    out.sort_by_key(rank);
}
