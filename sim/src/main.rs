// SPDX-License-Identifier: GPL-2.0
//! virtio-gpio-sim: a vhost-user virtio-gpio device for testing guest drivers.
//!
//!   virtio-gpio-sim serve --socket VHOST.sock --ctl CTL.sock [options]
//!   virtio-gpio-sim ctl (--socket CTL.sock | --port /dev/virtio-ports/NAME) CMD...
//!   virtio-gpio-sim bench [--requests N]

mod backend;
mod bench;
mod client;
mod control;
mod model;
mod proto;
mod vq;

#[cfg(test)]
mod tests;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use vhost_user_backend::VhostUserDaemon;
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;

use backend::{GpioBackend, KICK_EVENT, TIMER_EVENT};
use model::{Config, Device};

const USAGE: &str = "usage:
  virtio-gpio-sim serve --socket PATH --ctl PATH [--lines N] [--names gen|gen:PREFIX|none|A,B,..]
                  [--no-irq] [--access-platform] [--levels 0101..] [--wire OUT:IN].. [--loopback]
                  [--seed N] [--fault 'KIND ARGS'].. [--verbose]
  virtio-gpio-sim ctl (--socket PATH | --port DEV) [--timeout S] (CMD.. | -)
  virtio-gpio-sim bench [--requests N] [--batch N]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("ctl") => return client::main(&args[1..]),
        Some("bench") => bench::main(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("virtio-gpio-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

struct ServeOpts {
    socket: String,
    ctl: String,
    cfg: Config,
    faults: Vec<String>,
    verbose: bool,
}

fn parse_serve(args: &[String]) -> Result<ServeOpts, String> {
    let mut socket = None;
    let mut ctl = None;
    let mut lines: u16 = 8;
    let mut names = "gen".to_string();
    let mut irq = true;
    let mut access_platform = false;
    let mut levels = String::new();
    let mut wires = Vec::new();
    let mut loopback = false;
    let mut seed = 0x5eed_1234_abcd_0001u64;
    let mut faults = Vec::new();
    let mut verbose = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--socket" => socket = Some(val()?),
            "--ctl" => ctl = Some(val()?),
            "--lines" => lines = val()?.parse().map_err(|_| "bad --lines")?,
            "--names" => names = val()?,
            "--no-irq" => irq = false,
            "--access-platform" => access_platform = true,
            "--levels" => levels = val()?,
            "--wire" => {
                let v = val()?;
                let (o, i) = v.split_once(':').ok_or("--wire OUT:IN")?;
                wires.push((o.parse().map_err(|_| "bad --wire")?, i.parse().map_err(|_| "bad --wire")?));
            }
            "--loopback" => loopback = true,
            "--seed" => seed = val()?.parse().map_err(|_| "bad --seed")?,
            "--fault" => faults.push(val()?),
            "--verbose" => verbose = true,
            _ => return Err(format!("unknown option {a}\n{USAGE}")),
        }
    }
    // ngpio 0 is a fault the device can be asked to show, not a config.
    if lines == 0 {
        return Err("--lines must be at least 1 (use --fault 'ngpio0 on')".into());
    }
    let mut cfg = Config::new(lines);
    cfg.irq = irq;
    cfg.access_platform = access_platform;
    cfg.seed = seed;
    cfg.names = match names.as_str() {
        "gen" => cfg.names,
        "none" => Vec::new(),
        g if g.starts_with("gen:") => (0..lines).map(|i| format!("{}{i}", &g[4..])).collect(),
        list => {
            let mut v: Vec<String> = list.split(',').map(str::to_string).collect();
            v.resize(lines as usize, String::new());
            v
        }
    };
    cfg.levels = levels.bytes().map(|b| (b == b'1') as u8).collect();
    if loopback {
        wires.extend((0..lines / 2).map(|k| (2 * k, 2 * k + 1)));
    }
    if let Some(w) = wires.iter().find(|w| w.0 >= lines || w.1 >= lines || w.0 == w.1) {
        return Err(format!("bad wire {}:{}", w.0, w.1));
    }
    cfg.wires = wires;
    Ok(ServeOpts {
        socket: socket.ok_or("--socket is required")?,
        ctl: ctl.ok_or("--ctl is required")?,
        cfg,
        faults,
        verbose,
    })
}

fn serve(args: &[String]) -> Result<(), String> {
    let o = parse_serve(args)?;
    let mut dev = Device::new(o.cfg);
    for f in &o.faults {
        let (reply, _) = control::command(&mut dev, &format!("fault {f}"), Instant::now());
        if !reply.starts_with("ok") {
            return Err(format!("--fault {f}: {reply}"));
        }
    }
    let be = Arc::new(GpioBackend::new(dev).map_err(|e| e.to_string())?);

    let _ = std::fs::remove_file(&o.ctl);
    let listener = UnixListener::bind(&o.ctl).map_err(|e| format!("{}: {e}", o.ctl))?;
    let ctl_be = be.clone();
    let verbose = o.verbose;
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let be = ctl_be.clone();
            std::thread::spawn(move || control_conn(be, conn, verbose));
        }
    });

    let mut daemon = VhostUserDaemon::new(
        "virtio-gpio-sim".to_string(),
        be.clone(),
        GuestMemoryAtomic::new(GuestMemoryMmap::new()),
    )
    .map_err(|e| format!("daemon: {e:?}"))?;
    let handlers = daemon.get_epoll_handlers();
    {
        use std::os::fd::AsRawFd;
        handlers[0]
            .register_listener(be.kick.as_raw_fd(), EventSet::IN, KICK_EVENT as u64)
            .map_err(|e| format!("kick listener: {e}"))?;
        let tfd = be.timer.lock().unwrap().as_raw_fd();
        handlers[0]
            .register_listener(tfd, EventSet::IN, TIMER_EVENT as u64)
            .map_err(|e| format!("timer listener: {e}"))?;
    }
    eprintln!("virtio-gpio-sim: serving {} (control {})", o.socket, o.ctl);
    daemon.serve(&o.socket).map_err(|e| format!("serve: {e:?}"))?;
    eprintln!("virtio-gpio-sim: front-end disconnected, exiting");
    Ok(())
}

/// One control connection: a host client or the guest's virtio-serial port.
fn control_conn(be: Arc<GpioBackend>, conn: std::os::unix::net::UnixStream, verbose: bool) {
    let Ok(mut w) = conn.try_clone() else { return };
    let r = BufReader::new(conn);
    for line in r.lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let reply = {
            let mut st = be.lock();
            let (reply, done) = control::command(&mut st.dev, &line, Instant::now());
            st.outbox.extend(done);
            reply
        };
        be.notify();
        if verbose {
            eprintln!("ctl: {line} -> {reply}");
        }
        if writeln!(w, "{reply}").is_err() {
            break;
        }
    }
}
