// SPDX-License-Identifier: GPL-2.0
//! The control channel: one command per line, one answer line per command,
//! "ok ..." or "err ...". A command may start with "@TAG "; its answer then
//! starts with the same tag, so a client can skip answers that are not its own.

use std::time::{Duration, Instant};

use crate::model::{Completion, Device, NamesFault, Rule};
use crate::proto::*;

pub const HELP: &str = "commands: ping | info | set L 0|1 | edges L COUNT PERIOD_US [paced|paced-read] | stop L | get L | dirs | values \
| levels BITS | lines N | counters [L] | reset-counters | wire OUT IN | unwire OUT IN | spurious L | release [L] | fuzz MS \
| fault err|drop|hold|short|long|evshort|evlong|evinvalid|evstorm [type=T] [line=L] [prob=P] [count=N] [skip=N] \
| fault delay MS [type=T] [line=L] [prob=P] [count=N] \
| fault names ok|unterminated|short|duplicate|nonascii | fault ngpio0 on|off \
| fault reverse on|off | fault evstale on|off | fault clear";

type Reply = Result<String, String>;

/// Run one command line; returns the answer line and any buffers the command
/// completed (interrupts it raised, INVALID returns).
pub fn command(dev: &mut Device, input: &str, now: Instant) -> (String, Vec<Completion>) {
    let input = input.trim();
    let (tag, cmd) = match input.strip_prefix('@') {
        Some(rest) => match rest.split_once(' ') {
            Some((t, c)) => (Some(t), c.trim()),
            None => (Some(rest), ""),
        },
        None => (None, input),
    };
    let mut out = Vec::new();
    let reply = match run(dev, cmd, now, &mut out) {
        Ok(s) if s.is_empty() => "ok".to_string(),
        Ok(s) => format!("ok {s}"),
        Err(e) => format!("err {e}"),
    };
    let reply = match tag {
        Some(t) => format!("@{t} {reply}"),
        None => reply,
    };
    (reply, out)
}

fn num<T: std::str::FromStr>(s: Option<&str>, what: &str) -> Result<T, String> {
    s.ok_or(format!("missing {what}"))?
        .parse()
        .map_err(|_| format!("bad {what}"))
}

fn line_arg(dev: &Device, s: Option<&str>) -> Result<u16, String> {
    let l: u16 = num(s, "line")?;
    if l >= dev.ngpio() {
        return Err(format!("line {l} out of range (ngpio {})", dev.ngpio()));
    }
    Ok(l)
}

fn on_off(s: Option<&str>) -> Result<bool, String> {
    match s {
        Some("on") | Some("1") => Ok(true),
        Some("off") | Some("0") => Ok(false),
        _ => Err("expected on|off".into()),
    }
}

fn rule(args: &[&str]) -> Result<Rule, String> {
    let mut r = Rule::always();
    for a in args {
        let (k, v) = a.split_once('=').ok_or(format!("bad argument {a}"))?;
        match k {
            "type" => r.msg = Some(msg_from_name(v).ok_or(format!("unknown type {v}"))?),
            "line" => r.line = Some(v.parse().map_err(|_| "bad line")?),
            "prob" => {
                let p: f64 = v.parse().map_err(|_| "bad prob")?;
                if !(0.0..=1.0).contains(&p) {
                    return Err("prob must be in 0..1".into());
                }
                r.ppm = (p * 1_000_000.0) as u32;
            }
            "count" => r.count = Some(v.parse().map_err(|_| "bad count")?),
            "skip" => r.skip = v.parse().map_err(|_| "bad skip")?,
            _ => return Err(format!("unknown key {k}")),
        }
    }
    Ok(r)
}

fn run(dev: &mut Device, cmd: &str, now: Instant, out: &mut Vec<Completion>) -> Reply {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let mut w = words.iter().copied();
    match w.next() {
        None => Err("empty command".into()),
        Some("ping") => Ok("pong".into()),
        Some("help") => Ok(HELP.into()),
        Some("info") => {
            let c = dev.config_space();
            Ok(format!(
                "ngpio={} names_size={} irq={}",
                u16::from_le_bytes([c[0], c[1]]),
                u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
                dev.cfg.irq as u8
            ))
        }
        Some("set") => {
            let l = line_arg(dev, w.next())?;
            let v: u8 = num(w.next(), "level")?;
            if v > 1 {
                return Err("level must be 0 or 1".into());
            }
            dev.set_level(l, v, out);
            Ok(String::new())
        }
        Some("edges") => {
            let l = line_arg(dev, w.next())?;
            let count: u32 = num(w.next(), "count")?;
            let period: u64 = num(w.next(), "period")?;
            match w.next() {
                None => dev.edges(l, count, Duration::from_micros(period), now, out),
                Some("paced") => dev.edges_paced(l, count, Duration::from_micros(period), now, false),
                Some("paced-read") => dev.edges_paced(l, count, Duration::from_micros(period), now, true),
                Some(x) => return Err(format!("expected paced or paced-read, not {x}")),
            }
            Ok(String::new())
        }
        Some("stop") => {
            let l = line_arg(dev, w.next())?;
            Ok(format!("cancelled={}", dev.stop_edges(l)))
        }
        Some("get") => {
            let l = line_arg(dev, w.next())?;
            let ln = &dev.lines[l as usize];
            Ok(format!(
                "dir={} value={} level={} irq={} queued={} masked={} latched={} pending={} edges={}",
                dir_name(ln.dir),
                if ln.dir == DIR_OUT { ln.out_value } else { ln.level },
                ln.level,
                irq_name(ln.irq_type),
                ln.held.is_some() as u8,
                ln.held.is_none() as u8,
                ln.latched as u8,
                dev.pending(l),
                dev.edges_left(l)
            ))
        }
        Some("dirs") => Ok(dev
            .lines
            .iter()
            .map(|l| match l.dir {
                DIR_OUT => 'o',
                DIR_IN => 'i',
                _ => '-',
            })
            .collect()),
        Some("values") => Ok(dev
            .lines
            .iter()
            .map(|l| if (if l.dir == DIR_OUT { l.out_value } else { l.level }) != 0 { '1' } else { '0' })
            .collect()),
        Some("levels") => {
            let bits = w.next().ok_or("missing levels")?;
            if bits.len() > dev.ngpio() as usize || !bits.bytes().all(|b| b == b'0' || b == b'1') {
                return Err("levels: up to ngpio characters 0 or 1".into());
            }
            for (i, b) in bits.bytes().enumerate() {
                dev.set_level(i as u16, b - b'0', out);
            }
            Ok(String::new())
        }
        Some("counters") => match w.next() {
            Some(s) => {
                let l = line_arg(dev, Some(s))?;
                let st = dev.lines[l as usize].stats;
                Ok(format!(
                    "requests={} events={} latched={} invalid={}",
                    st.requests, st.events, st.latched, st.invalid
                ))
            }
            None => {
                let s = dev.stats;
                let mut r: Vec<String> = (1..7).map(|i| format!("{}={}", MSG_NAMES[i], s.msgs[i])).collect();
                r.push(format!("bad_type={}", s.msgs[0]));
                r.push(format!("errors={}", s.errors));
                r.push(format!("evbufs={}", s.evbufs));
                r.push(format!("events={}", s.events));
                r.push(format!("latched={}", s.latched));
                r.push(format!("invalid={}", s.invalid));
                r.push(format!("bad={}", s.bad));
                r.push(format!("type_without_none={}", s.type_without_none));
                r.push(format!("double_queue={}", s.double_queue));
                r.push(format!("dropped={}", s.dropped));
                // The event cycles (see Device::cycles): how many, and the
                // median, 99th percentile and slowest, in microseconds.
                let mut c = dev.cycles.clone();
                c.sort_unstable();
                let at = |q: usize| c.get((c.len() * q / 100).min(c.len().saturating_sub(1))).copied().unwrap_or(0);
                r.push(format!("cycles={}", c.len()));
                r.push(format!("cycle_p50_us={}", at(50)));
                r.push(format!("cycle_p99_us={}", at(99)));
                r.push(format!("cycle_max_us={}", c.last().copied().unwrap_or(0)));
                r.push(format!("held={}", dev.held_count()));
                Ok(r.join(" "))
            }
        },
        Some("lines") => {
            // (while no driver is bound: the config space changes at once)
            let n: u16 = num(w.next(), "line count")?;
            if n == 0 {
                return Err("at least one line (use fault ngpio0)".into());
            }
            dev.resize(n);
            Ok(String::new())
        }
        Some("reset-counters") => {
            dev.stats = Default::default();
            dev.cycles.clear();
            for l in &mut dev.lines {
                l.delivered_at = None;
                l.stats = Default::default();
            }
            Ok(String::new())
        }
        Some(c @ ("wire" | "unwire")) => {
            let o = line_arg(dev, w.next())?;
            let i = line_arg(dev, w.next())?;
            dev.cfg.wires.retain(|x| *x != (o, i));
            if c == "wire" {
                if o == i {
                    return Err("a line cannot drive itself".into());
                }
                dev.cfg.wires.push((o, i));
            }
            Ok(String::new())
        }
        Some("spurious") => {
            let l = line_arg(dev, w.next())?;
            if dev.spurious(l, out) {
                Ok(String::new())
            } else {
                Err(format!("line {l} holds no eventq buffer"))
            }
        }
        Some("fuzz") => {
            let ms: u64 = num(w.next(), "duration in ms")?;
            dev.fuzz(Duration::from_millis(ms), now);
            Ok(String::new())
        }
        Some("release") => {
            let line = match w.next() {
                Some(s) => Some(line_arg(dev, Some(s))?),
                None => None,
            };
            Ok(format!("released={}", dev.release(line, now, out)))
        }
        Some("fault") => fault(dev, &words[1..]),
        Some(c) => Err(format!("unknown command {c}")),
    }
}

fn fault(dev: &mut Device, args: &[&str]) -> Reply {
    let f = &mut dev.faults;
    match args.first().copied() {
        Some("clear") => {
            *f = Default::default();
            Ok(String::new())
        }
        Some("names") => {
            f.names = match args.get(1).copied() {
                Some("ok") => NamesFault::None,
                Some("unterminated") => NamesFault::Unterminated,
                Some("short") => NamesFault::Short,
                Some("duplicate") => NamesFault::Duplicate,
                Some("nonascii") => NamesFault::NonAscii,
                _ => return Err("expected ok|unterminated|short|duplicate|nonascii".into()),
            };
            Ok(String::new())
        }
        Some("ngpio0") => {
            f.ngpio0 = on_off(args.get(1).copied())?;
            Ok(String::new())
        }
        Some("evstale") => {
            f.ev_stale = on_off(args.get(1).copied())?;
            Ok(String::new())
        }
        Some("reverse") => {
            f.reverse = on_off(args.get(1).copied())?;
            Ok(String::new())
        }
        Some("delay") => {
            let ms: u64 = num(args.get(1).copied(), "delay in ms")?;
            f.delay.push((rule(&args[2..])?, Duration::from_millis(ms)));
            Ok(String::new())
        }
        Some(kind) => {
            let r = rule(&args[1..])?;
            let list = match kind {
                "err" => &mut f.err,
                "drop" => &mut f.drop,
                "hold" => &mut f.hold,
                "short" => &mut f.short,
                "long" => &mut f.long,
                "evshort" => &mut f.ev_short,
                "evlong" => &mut f.ev_long,
                "evinvalid" => &mut f.ev_invalid,
                "evstorm" => &mut f.ev_storm,
                _ => return Err(format!("unknown fault {kind}")),
            };
            list.push(r);
            Ok(String::new())
        }
        None => Err("fault what?".into()),
    }
}
