// SPDX-License-Identifier: GPL-2.0
//! `virtio-gpio-sim ctl`: send control commands from the host (Unix socket)
//! or from inside the guest (the virtio-serial port), print the answers.
//! Exit status: 0 all answers ok, 1 an answer was err, 2 no answer in time.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

enum Chan {
    Sock(UnixStream),
    Port(File),
}

impl Chan {
    fn fd(&self) -> i32 {
        match self {
            Chan::Sock(s) => s.as_raw_fd(),
            Chan::Port(f) => f.as_raw_fd(),
        }
    }

    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Chan::Sock(s) => s.write_all(b),
            Chan::Port(f) => f.write_all(b),
        }
    }

    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            Chan::Sock(s) => s.read(b),
            Chan::Port(f) => f.read(b),
        }
    }
}

fn wait_readable(fd: i32, deadline: Instant) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd on the stack, count 1.
        let r = unsafe { libc::poll(&mut p, 1, left.as_millis().min(i32::MAX as u128) as i32 + 1) };
        if r > 0 {
            return true;
        }
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return false;
        }
    }
}

/// Read bytes up to a newline; one byte at a time so nothing after the line
/// is consumed.
fn read_line(c: &mut Chan, deadline: Instant) -> Option<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if !wait_readable(c.fd(), deadline) {
            return None;
        }
        match c.read(&mut b) {
            Ok(0) => return None,
            Ok(_) if b[0] == b'\n' => return Some(String::from_utf8_lossy(&line).into_owned()),
            Ok(_) => line.push(b[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

fn open_port(path: &str, deadline: Instant) -> io::Result<File> {
    loop {
        // A virtio-serial port has one opener at a time: wait for our turn.
        match OpenOptions::new().read(true).write(true).open(path) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            r => return r,
        }
    }
}

pub fn main(args: &[String]) -> ExitCode {
    let mut sock = None;
    let mut port = None;
    let mut timeout = 20.0f64;
    let mut cmds: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--socket" => sock = it.next().cloned(),
            "--port" => port = it.next().cloned(),
            "--timeout" => timeout = it.next().and_then(|s| s.parse().ok()).unwrap_or(timeout),
            _ => {
                cmds.push(a.clone());
                cmds.extend(it.by_ref().cloned());
            }
        }
    }
    let cmds: Vec<String> = if cmds.len() == 1 && cmds[0] == "-" {
        io::stdin().lock().lines().map_while(Result::ok).filter(|l| !l.trim().is_empty()).collect()
    } else if cmds.is_empty() {
        eprintln!("ctl: no command");
        return ExitCode::from(2);
    } else {
        vec![cmds.join(" ")]
    };
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    let chan = match (sock, port) {
        (Some(s), None) => UnixStream::connect(&s).map(Chan::Sock),
        (None, Some(p)) => open_port(&p, deadline).map(Chan::Port),
        _ => {
            eprintln!("ctl: give one of --socket or --port");
            return ExitCode::from(2);
        }
    };
    let mut chan = match chan {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ctl: {e}");
            return ExitCode::from(2);
        }
    };
    let mut status = 0u8;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tag_base = format!("{}.{nanos}", std::process::id());
    for (n, cmd) in cmds.iter().enumerate() {
        let tag = format!("@{tag_base}.{n}");
        if chan.write_all(format!("{tag} {cmd}\n").as_bytes()).is_err() {
            return ExitCode::from(2);
        }
        // Skip answers left over from an earlier client that went away.
        let answer = loop {
            match read_line(&mut chan, deadline) {
                None => {
                    eprintln!("ctl: no answer to '{cmd}'");
                    return ExitCode::from(2);
                }
                Some(l) => {
                    if let Some(rest) = l.strip_prefix(&tag).and_then(|r| r.strip_prefix(' ')) {
                        break rest.to_string();
                    }
                }
            }
        };
        if !answer.starts_with("ok") {
            status = 1;
        }
        println!("{answer}");
    }
    ExitCode::from(status)
}
