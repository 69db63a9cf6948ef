// SPDX-License-Identifier: GPL-2.0
//! Protocol, latching and fault tests: the model alone, and through real
//! split virtqueues in memory (virtio-queue's mock driver side).

use std::time::{Duration, Instant};

use vm_memory::{Bytes, GuestAddress};

use crate::bench::{memory, request, Ring};
use crate::control::command;
use crate::model::*;
use crate::proto::*;
use crate::vq;

fn dev(n: u16) -> Device {
    Device::new(Config::new(n))
}

fn chain(head: u16, msg: u16, gpio: u16, value: u32) -> Chain {
    Chain { head, readable: request(msg, gpio, value), writable: vec![(0x1000 * head as u64, 2)] }
}

fn ev(head: u16, gpio: u16) -> Chain {
    Chain { head, readable: gpio.to_le_bytes().to_vec(), writable: vec![(0x1000 * head as u64, 1)] }
}

fn req(d: &mut Device, msg: u16, gpio: u16, value: u32) -> Completion {
    let mut v = d.on_requests(vec![chain(0, msg, gpio, value)], Instant::now());
    assert_eq!(v.len(), 1, "one answer expected");
    v.pop().unwrap()
}

fn ok(d: &mut Device, msg: u16, gpio: u16, value: u32) -> u8 {
    let c = req(d, msg, gpio, value);
    assert_eq!(c.data[0], STATUS_OK, "msg {msg} gpio {gpio} value {value}");
    assert_eq!(c.used_len, RESPONSE_SIZE);
    c.data[1]
}

fn is_err(c: &Completion) -> bool {
    c.data[0] == STATUS_ERR
}

fn events(out: &[Completion]) -> Vec<(u16, u8)> {
    out.iter()
        .filter(|c| c.queue == EVENTQ)
        .map(|c| (u16::from_le_bytes([c.chain.readable[0], c.chain.readable[1]]), c.data[0]))
        .collect()
}

fn input_with_irq(d: &mut Device, gpio: u16, t: u8) {
    ok(d, MSG_SET_DIRECTION, gpio, DIR_IN as u32);
    ok(d, MSG_SET_IRQ_TYPE, gpio, t as u32);
}

fn ctl(d: &mut Device, cmd: &str) -> (String, Vec<Completion>) {
    command(d, cmd, Instant::now())
}

// ---- through real virtqueues ----

#[test]
fn virtqueue_set_get_round_trip() {
    let mem = memory();
    let mut ring = Ring::new(&mem);
    let mut d = dev(4);
    let bufs = vec![
        (request(MSG_SET_VALUE, 2, 1), 2),
        (request(MSG_SET_DIRECTION, 2, DIR_OUT as u32), 2),
        (request(MSG_GET_VALUE, 2, 0), 2),
        (request(MSG_GET_DIRECTION, 2, 0), 2),
    ];
    let wa = ring.add(&mem, &bufs);
    let chains = vq::pop_chains(&mut ring.queue, &mem);
    assert_eq!(chains.len(), 4);
    for c in d.on_requests(chains, Instant::now()) {
        vq::complete(&mut ring.queue, &mem, &c);
    }
    let used = ring.used(0);
    assert_eq!(used.len(), 4);
    assert!(used.iter().all(|u| u.1 == 2));
    let read = |a: u64| {
        let mut b = [0u8; 2];
        mem.read_slice(&mut b, GuestAddress(a)).unwrap();
        b
    };
    assert_eq!(read(wa[0]), [STATUS_OK, 0]);
    assert_eq!(read(wa[2]), [STATUS_OK, 1]);
    assert_eq!(read(wa[3]), [STATUS_OK, DIR_OUT]);
}

#[test]
fn virtqueue_line_names_fill_the_buffer() {
    let mem = memory();
    let mut ring = Ring::new(&mem);
    let mut d = Device::new(Config { names: vec!["a".into(), "".into(), "ccc".into()], ..Config::new(3) });
    let size = u32::from_le_bytes(d.config_space()[4..8].try_into().unwrap());
    assert_eq!(size, 7);
    let wa = ring.add(&mem, &[(request(MSG_GET_LINE_NAMES, 0, 0), 1 + size)]);
    for c in d.on_requests(vq::pop_chains(&mut ring.queue, &mem), Instant::now()) {
        vq::complete(&mut ring.queue, &mem, &c);
    }
    assert_eq!(ring.used(0), vec![(0, 1 + size)]);
    let mut b = vec![0u8; 1 + size as usize];
    mem.read_slice(&mut b, GuestAddress(wa[0])).unwrap();
    assert_eq!(b, b"\0a\0\0ccc\0");
}

#[test]
fn virtqueue_line_names_of_65535_lines() {
    let mem = memory();
    let mut ring = Ring::new(&mem);
    let mut d = Device::new(Config::new(u16::MAX));
    let size = u32::from_le_bytes(d.config_space()[4..8].try_into().unwrap());
    assert!(size > 512 * 1024, "{size}");
    ring.add(&mem, &[(request(MSG_GET_LINE_NAMES, 0, 0), 1 + size)]);
    for c in d.on_requests(vq::pop_chains(&mut ring.queue, &mem), Instant::now()) {
        vq::complete(&mut ring.queue, &mem, &c);
    }
    assert_eq!(ring.used(0), vec![(0, 1 + size)]);
}

#[test]
fn virtqueue_short_request_gets_err() {
    let mem = memory();
    let mut ring = Ring::new(&mem);
    let mut d = dev(2);
    let wa = ring.add(&mem, &[(vec![5, 0, 1], 2)]);
    for c in d.on_requests(vq::pop_chains(&mut ring.queue, &mem), Instant::now()) {
        vq::complete(&mut ring.queue, &mem, &c);
    }
    let mut b = [0u8; 1];
    mem.read_slice(&mut b, GuestAddress(wa[0])).unwrap();
    assert_eq!(b[0], STATUS_ERR);
    assert_eq!(d.stats.bad, 1);
}

// ---- requestq rules ----

#[test]
fn config_space_layout() {
    let mut d = Device::new(Config { names: vec!["x".into(), "yy".into()], ..Config::new(2) });
    assert_eq!(d.config_space(), [2, 0, 0, 0, 5, 0, 0, 0]);
    ctl(&mut d, "fault ngpio0 on");
    assert_eq!(&d.config_space()[0..2], &[0, 0]);
}

#[test]
fn bad_requests_get_err() {
    let mut d = dev(4);
    assert!(is_err(&req(&mut d, MSG_GET_VALUE, 4, 0)), "gpio out of range");
    assert!(is_err(&req(&mut d, 9, 0, 0)), "unknown type");
    assert!(is_err(&req(&mut d, MSG_SET_VALUE, 0, 2)), "value not 0/1");
    assert!(is_err(&req(&mut d, MSG_SET_DIRECTION, 0, 3)), "bad direction");
    assert!(is_err(&req(&mut d, MSG_SET_IRQ_TYPE, 0, 5)), "bad irq type");
    assert!(is_err(&req(&mut d, MSG_GET_LINE_NAMES, 1, 0)), "names for gpio 1");
    // A response buffer too small for the answer.
    let mut c = chain(0, MSG_GET_VALUE, 0, 0);
    c.writable = vec![(0, 1)];
    let a = d.on_requests(vec![c], Instant::now()).pop().unwrap();
    assert_eq!((a.data.clone(), a.used_len), (vec![STATUS_ERR], 1));
    assert_eq!(d.stats.errors, 7);
}

#[test]
fn set_direction_none_deactivates() {
    let mut d = dev(2);
    ok(&mut d, MSG_SET_VALUE, 0, 1);
    ok(&mut d, MSG_SET_DIRECTION, 0, DIR_OUT as u32);
    assert_eq!(ok(&mut d, MSG_GET_DIRECTION, 0, 0), DIR_OUT);
    ok(&mut d, MSG_SET_DIRECTION, 0, DIR_NONE as u32);
    assert_eq!(ok(&mut d, MSG_GET_DIRECTION, 0, 0), DIR_NONE);
    assert_eq!(ctl(&mut d, "dirs").0, "ok --");
}

#[test]
fn no_irq_messages_without_the_feature() {
    let mut d = Device::new(Config { irq: false, ..Config::new(2) });
    ok(&mut d, MSG_SET_DIRECTION, 0, DIR_IN as u32);
    assert!(is_err(&req(&mut d, MSG_SET_IRQ_TYPE, 0, IRQ_EDGE_BOTH as u32)));
    let out = d.on_events(vec![ev(1, 0)]);
    assert_eq!(events(&out), vec![(0, IRQ_STATUS_INVALID)]);
}

#[test]
fn output_lines_take_no_irq_type() {
    let mut d = dev(2);
    ok(&mut d, MSG_SET_DIRECTION, 0, DIR_OUT as u32);
    assert!(is_err(&req(&mut d, MSG_SET_IRQ_TYPE, 0, IRQ_EDGE_RISING as u32)));
    ok(&mut d, MSG_SET_IRQ_TYPE, 0, IRQ_NONE as u32);
}

#[test]
fn answers_per_line_in_order_and_reversed_across_lines() {
    let mut d = dev(4);
    let chains = vec![
        chain(10, MSG_GET_VALUE, 0, 0),
        chain(11, MSG_GET_VALUE, 1, 0),
        chain(12, MSG_SET_VALUE, 1, 1),
        chain(13, MSG_GET_VALUE, 2, 0),
    ];
    let heads = |v: Vec<Completion>| v.iter().map(|c| c.chain.head).collect::<Vec<_>>();
    assert_eq!(heads(d.on_requests(chains.clone(), Instant::now())), vec![10, 11, 12, 13]);
    ctl(&mut d, "fault reverse on");
    assert_eq!(heads(d.on_requests(chains, Instant::now())), vec![13, 11, 12, 10]);
}

// ---- interrupts ----

#[test]
fn edges_latched_while_masked_are_delivered_once_on_unmask() {
    let mut d = dev(2);
    input_with_irq(&mut d, 1, IRQ_EDGE_BOTH);
    let mut out = Vec::new();
    for v in [1, 0, 1] {
        d.set_level(1, v, &mut out);
    }
    assert!(out.is_empty(), "masked: nothing delivered");
    assert_eq!(d.lines[1].stats.latched, 3);
    assert_eq!(events(&d.on_events(vec![ev(1, 1)])), vec![(1, IRQ_STATUS_VALID)]);
    assert!(d.on_events(vec![ev(2, 1)]).is_empty(), "latch cleared by delivery");
    d.set_level(1, 0, &mut out);
    assert_eq!(events(&out), vec![(1, IRQ_STATUS_VALID)], "unmasked: delivered at once");
}

#[test]
fn edge_types_select_the_edges() {
    for (t, expect) in [(IRQ_EDGE_RISING, [true, false]), (IRQ_EDGE_FALLING, [false, true])] {
        let mut d = dev(1);
        input_with_irq(&mut d, 0, t);
        let mut got = Vec::new();
        for v in [1u8, 0] {
            let mut out = d.on_events(vec![ev(1, 0)]);
            d.set_level(0, v, &mut out);
            got.push(!events(&out).is_empty());
            // Take the buffer back so the next step starts unmasked.
            ctl(&mut d, "spurious 0");
        }
        assert_eq!(got, expect, "type {t}");
    }
}

#[test]
fn levels_are_not_latched_while_masked() {
    let mut d = dev(1);
    input_with_irq(&mut d, 0, IRQ_LEVEL_HIGH);
    let mut out = Vec::new();
    d.set_level(0, 1, &mut out);
    d.set_level(0, 0, &mut out);
    assert!(d.on_events(vec![ev(1, 0)]).is_empty(), "level gone before unmask");
    d.set_level(0, 1, &mut out);
    assert_eq!(events(&out), vec![(0, IRQ_STATUS_VALID)]);
    // Still high on requeue: reported again at once.
    assert_eq!(events(&d.on_events(vec![ev(2, 0)])), vec![(0, IRQ_STATUS_VALID)]);
}

#[test]
fn level_low_fires_on_low() {
    let mut d = Device::new(Config { levels: vec![1], ..Config::new(1) });
    input_with_irq(&mut d, 0, IRQ_LEVEL_LOW);
    assert!(d.on_events(vec![ev(1, 0)]).is_empty());
    let mut out = Vec::new();
    d.set_level(0, 0, &mut out);
    assert_eq!(events(&out), vec![(0, IRQ_STATUS_VALID)]);
}

#[test]
fn irq_type_none_returns_held_buffer_invalid_and_drops_latch() {
    let mut d = dev(1);
    input_with_irq(&mut d, 0, IRQ_EDGE_RISING);
    assert!(d.on_events(vec![ev(1, 0)]).is_empty());
    let out = d.on_requests(vec![chain(2, MSG_SET_IRQ_TYPE, 0, 0)], Instant::now());
    assert_eq!(events(&out), vec![(0, IRQ_STATUS_INVALID)]);
    assert_eq!(d.lines[0].stats.invalid, 1);
    // A latch taken while enabled and masked is gone after none.
    ok(&mut d, MSG_SET_IRQ_TYPE, 0, IRQ_EDGE_RISING as u32);
    let mut o = Vec::new();
    d.set_level(0, 1, &mut o);
    assert!(d.lines[0].latched);
    ok(&mut d, MSG_SET_IRQ_TYPE, 0, 0);
    ok(&mut d, MSG_SET_IRQ_TYPE, 0, IRQ_EDGE_RISING as u32);
    assert!(d.on_events(vec![ev(3, 0)]).is_empty());
}

#[test]
fn fault_evstale_returns_the_buffer_valid_on_none() {
    let mut d = dev(1);
    ctl(&mut d, "fault evstale on");
    input_with_irq(&mut d, 0, IRQ_EDGE_RISING);
    assert!(d.on_events(vec![ev(1, 0)]).is_empty());
    let out = d.on_requests(vec![chain(2, MSG_SET_IRQ_TYPE, 0, 0)], Instant::now());
    assert_eq!(events(&out), vec![(0, IRQ_STATUS_VALID)]);
}

#[test]
fn fuzz_mangles_for_a_while_then_releases_and_stops() {
    let mut d = dev(4);
    let t0 = Instant::now();
    d.fuzz(Duration::from_secs(1), t0);
    let mut answered = 0;
    let mut mangled = 0;
    for i in 0..400u16 {
        for c in d.on_requests(vec![chain(i, MSG_GET_VALUE, i % 4, 0)], t0) {
            answered += 1;
            if c.used_len != RESPONSE_SIZE || c.data.len() != 2 || c.data[0] != STATUS_OK || c.data[1] > 1 {
                mangled += 1;
            }
        }
    }
    let held = d.dropped_count();
    assert!(held > 0 && mangled > 40 && answered - mangled > 100, "{held} {mangled} {answered}");
    assert_eq!(answered + held, 400);
    // Time is up: the held requests are answered, then answers are normal.
    let out = d.tick(t0 + Duration::from_secs(2));
    assert_eq!(out.len(), held);
    assert_eq!(d.dropped_count(), 0);
    assert!(!is_err(&req(&mut d, MSG_GET_VALUE, 0, 0)));
}

#[test]
fn type_change_without_none_is_counted() {
    let mut d = dev(1);
    input_with_irq(&mut d, 0, IRQ_EDGE_RISING);
    ok(&mut d, MSG_SET_IRQ_TYPE, 0, IRQ_EDGE_FALLING as u32);
    assert_eq!(d.stats.type_without_none, 1);
    ok(&mut d, MSG_SET_IRQ_TYPE, 0, 0);
    ok(&mut d, MSG_SET_IRQ_TYPE, 0, IRQ_LEVEL_HIGH as u32);
    assert_eq!(d.stats.type_without_none, 1);
}

#[test]
fn second_buffer_for_a_line_is_returned_invalid() {
    let mut d = dev(1);
    input_with_irq(&mut d, 0, IRQ_EDGE_BOTH);
    assert!(d.on_events(vec![ev(1, 0)]).is_empty());
    assert_eq!(events(&d.on_events(vec![ev(2, 0)])), vec![(0, IRQ_STATUS_INVALID)]);
    assert_eq!(d.stats.double_queue, 1);
    assert_eq!(d.lines[0].held.as_ref().map(|c| c.head), Some(1));
}

#[test]
fn eventq_buffer_for_bad_line_is_invalid() {
    let mut d = dev(2);
    assert_eq!(events(&d.on_events(vec![ev(1, 7)])), vec![(7, IRQ_STATUS_INVALID)]);
}

#[test]
fn loopback_wire_makes_edges() {
    let mut d = Device::new(Config { wires: vec![(0, 1)], ..Config::new(2) });
    input_with_irq(&mut d, 1, IRQ_EDGE_BOTH);
    assert!(d.on_events(vec![ev(1, 1)]).is_empty());
    ok(&mut d, MSG_SET_VALUE, 0, 1);
    // Not an output yet: nothing driven.
    assert_eq!(d.lines[1].level, 0);
    let out = d.on_requests(vec![chain(2, MSG_SET_DIRECTION, 0, DIR_OUT as u32)], Instant::now());
    assert_eq!(events(&out), vec![(1, IRQ_STATUS_VALID)]);
    assert_eq!(ok(&mut d, MSG_GET_VALUE, 1, 0), 1);
}

#[test]
fn edge_train_runs_on_the_clock() {
    let mut d = dev(1);
    input_with_irq(&mut d, 0, IRQ_EDGE_BOTH);
    let t0 = Instant::now();
    let mut out = Vec::new();
    d.edges(0, 4, Duration::from_millis(10), t0, &mut out);
    assert!(out.is_empty());
    assert_eq!(d.next_deadline(), Some(t0 + Duration::from_millis(10)));
    d.tick(t0 + Duration::from_millis(25));
    assert_eq!(d.lines[0].level, 0, "two flips");
    assert_eq!(d.lines[0].stats.latched, 2);
    d.tick(t0 + Duration::from_millis(40));
    assert_eq!(d.lines[0].stats.latched, 4);
    assert_eq!(d.next_deadline(), None);
    d.edges(0, 5, Duration::from_millis(10), t0, &mut out);
    assert_eq!(ctl(&mut d, "stop 0").0, "ok cancelled=5");
    assert_eq!(d.next_deadline(), None);
}

#[test]
fn reset_forgets_buffers_and_settings_but_not_levels() {
    let mut d = Device::new(Config { levels: vec![1, 0], ..Config::new(2) });
    input_with_irq(&mut d, 1, IRQ_EDGE_BOTH);
    assert!(d.on_events(vec![ev(1, 1)]).is_empty());
    ctl(&mut d, "fault drop type=get_value");
    assert!(d.on_requests(vec![chain(2, MSG_GET_VALUE, 0, 0)], Instant::now()).is_empty());
    d.reset();
    assert!(d.lines[1].held.is_none());
    assert_eq!((d.lines[1].dir, d.lines[1].irq_type, d.lines[0].level), (DIR_NONE, IRQ_NONE, 1));
    assert_eq!(d.dropped_count(), 0);
}

// ---- faults ----

#[test]
fn fault_err_by_type_line_and_count() {
    let mut d = dev(4);
    ctl(&mut d, "fault err type=get_value line=2 count=2");
    assert!(!is_err(&req(&mut d, MSG_GET_VALUE, 1, 0)));
    assert!(!is_err(&req(&mut d, MSG_GET_DIRECTION, 2, 0)));
    assert!(is_err(&req(&mut d, MSG_GET_VALUE, 2, 0)));
    assert!(is_err(&req(&mut d, MSG_GET_VALUE, 2, 0)));
    assert!(!is_err(&req(&mut d, MSG_GET_VALUE, 2, 0)), "count used up");
    ctl(&mut d, "fault err");
    assert!(is_err(&req(&mut d, MSG_SET_VALUE, 0, 1)));
    ctl(&mut d, "fault clear");
    assert!(!is_err(&req(&mut d, MSG_SET_VALUE, 0, 1)));
}

#[test]
fn fault_err_with_probability() {
    let mut d = dev(1);
    ctl(&mut d, "fault err prob=0.5");
    let errs = (0..2000).filter(|_| is_err(&req(&mut d, MSG_GET_VALUE, 0, 0))).count();
    assert!((800..1200).contains(&errs), "{errs} of 2000");
}

#[test]
fn fault_drop_never_answers() {
    let mut d = dev(2);
    ctl(&mut d, "fault drop line=1");
    assert!(d.on_requests(vec![chain(1, MSG_GET_VALUE, 1, 0)], Instant::now()).is_empty());
    assert_eq!(d.tick(Instant::now() + Duration::from_secs(100)).len(), 0);
    assert_eq!(d.stats.dropped, 1);
    assert_eq!(d.on_requests(vec![chain(2, MSG_GET_VALUE, 0, 0)], Instant::now()).len(), 1);
    let (reply, out) = ctl(&mut d, "release");
    assert_eq!(reply, "ok released=1");
    assert_eq!(out.len(), 1);
    assert!(!is_err(&out[0]));
    assert_eq!(d.dropped_count(), 0);
    // The rule still swallows new requests.
    assert!(d.on_requests(vec![chain(3, MSG_GET_VALUE, 1, 0)], Instant::now()).is_empty());
}

#[test]
fn fault_delay_holds_the_line_in_order() {
    let mut d = dev(2);
    ctl(&mut d, "fault delay 50 type=set_value count=1");
    let t0 = Instant::now();
    let out = d.on_requests(
        vec![chain(1, MSG_SET_VALUE, 0, 1), chain(2, MSG_GET_VALUE, 0, 0), chain(3, MSG_GET_VALUE, 1, 0)],
        t0,
    );
    let heads: Vec<u16> = out.iter().map(|c| c.chain.head).collect();
    assert_eq!(heads, vec![3], "line 1 answers, line 0 waits behind its delayed request");
    assert_eq!(d.pending(0), 2);
    assert!(d.tick(t0 + Duration::from_millis(49)).is_empty());
    let out = d.tick(t0 + Duration::from_millis(50));
    let heads: Vec<u16> = out.iter().map(|c| c.chain.head).collect();
    assert_eq!(heads, vec![1, 2]);
}

#[test]
fn fault_skip_lets_the_first_matches_through() {
    let mut d = dev(2);
    ctl(&mut d, "fault err type=get_value skip=2 count=1");
    let st = |d: &mut Device| req(d, MSG_GET_VALUE, 1, 0).data[0];
    assert_eq!([st(&mut d), st(&mut d), st(&mut d), st(&mut d)], [STATUS_OK, STATUS_OK, STATUS_ERR, STATUS_OK]);
}

#[test]
fn fault_used_length_short_and_long() {
    let mut d = dev(1);
    ctl(&mut d, "fault short type=get_value count=1");
    ctl(&mut d, "fault long type=get_direction count=1");
    assert_eq!(req(&mut d, MSG_GET_VALUE, 0, 0).used_len, 1);
    assert_eq!(req(&mut d, MSG_GET_DIRECTION, 0, 0).used_len, 18);
    assert_eq!(req(&mut d, MSG_GET_VALUE, 0, 0).used_len, 2);
}

#[test]
fn fault_event_lengths() {
    let mut d = dev(1);
    input_with_irq(&mut d, 0, IRQ_EDGE_BOTH);
    ctl(&mut d, "fault evshort count=1");
    ctl(&mut d, "fault evlong count=1");
    let mut lens = Vec::new();
    for v in [1u8, 0, 1] {
        let mut out = d.on_events(vec![ev(1, 0)]);
        d.set_level(0, v, &mut out);
        lens.push(out[0].used_len);
    }
    assert_eq!(lens, vec![0, 8, 1]);
}

#[test]
fn fault_event_invalid_while_enabled() {
    let mut d = dev(1);
    // no trigger type: the buffer is held as usual
    assert!(d.on_events(vec![ev(1, 0)]).is_empty());
    d.reset();
    input_with_irq(&mut d, 0, IRQ_EDGE_RISING);
    ctl(&mut d, "fault evinvalid line=0 count=2");
    for _ in 0..2 {
        let out = d.on_events(vec![ev(1, 0)]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, vec![IRQ_STATUS_INVALID]);
    }
    // the fault is spent: held, and an edge is delivered
    let mut out = d.on_events(vec![ev(1, 0)]);
    assert!(out.is_empty());
    d.set_level(0, 1, &mut out);
    assert_eq!(out[0].data, vec![IRQ_STATUS_VALID]);
}

#[test]
fn fault_event_storm_answers_at_once_while_typed() {
    let mut d = dev(2);
    ctl(&mut d, "fault evstorm line=0");
    // no trigger type: held as usual
    assert!(d.on_events(vec![ev(1, 0)]).is_empty());
    d.reset();
    input_with_irq(&mut d, 0, IRQ_EDGE_RISING);
    input_with_irq(&mut d, 1, IRQ_EDGE_RISING);
    for _ in 0..3 {
        let out = d.on_events(vec![ev(1, 0)]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, vec![IRQ_STATUS_VALID]);
    }
    assert_eq!(d.lines[0].stats.events, 3);
    // another line is not affected
    assert!(d.on_events(vec![ev(2, 1)]).is_empty());
}

#[test]
fn fault_names_blocks() {
    let base = || Device::new(Config { names: vec!["ab".into(), "cd".into()], ..Config::new(2) });
    let cases = [
        ("ok", b"ab\0cd\0".to_vec()),
        ("unterminated", b"ab\0cdX".to_vec()),
        ("short", b"ab\0".to_vec()),
        ("duplicate", b"ab\0ab\0".to_vec()),
        ("nonascii", b"ab\xc3\xa9\0cd\0".to_vec()),
    ];
    for (f, block) in cases {
        let mut d = base();
        assert!(ctl(&mut d, &format!("fault names {f}")).0.starts_with("ok"));
        assert_eq!(d.names_block(), block, "{f}");
        assert_eq!(u32::from_le_bytes(d.config_space()[4..8].try_into().unwrap()) as usize, block.len());
    }
    let mut d = Device::new(Config { names: vec![], ..Config::new(2) });
    assert_eq!(d.config_space()[4..8], [0, 0, 0, 0]);
    let mut c = chain(0, MSG_GET_LINE_NAMES, 0, 0);
    c.writable = vec![(0, 1)];
    assert_eq!(d.on_requests(vec![c], Instant::now())[0].data, vec![STATUS_ERR]);
}

// ---- control channel ----

#[test]
fn control_commands_and_tags() {
    let mut d = dev(4);
    assert_eq!(ctl(&mut d, "@t1 ping").0, "@t1 ok pong");
    assert_eq!(ctl(&mut d, "info").0, "ok ngpio=4 names_size=28 irq=1");
    assert_eq!(ctl(&mut d, "set 2 1").0, "ok");
    assert!(ctl(&mut d, "get 2").0.starts_with("ok dir=none value=1 level=1 irq=none queued=0 masked=1"));
    assert!(ctl(&mut d, "set 9 1").0.starts_with("err line 9 out of range"));
    assert!(ctl(&mut d, "bogus").0.starts_with("err unknown command"));
    assert!(ctl(&mut d, "fault err type=nope").0.starts_with("err unknown type"));
    ok(&mut d, MSG_GET_VALUE, 2, 0);
    assert!(ctl(&mut d, "counters").0.contains("get_value=1"));
    assert_eq!(ctl(&mut d, "counters 2").0, "ok requests=1 events=0 latched=0 invalid=0");
    ctl(&mut d, "reset-counters");
    assert_eq!(ctl(&mut d, "counters 2").0, "ok requests=0 events=0 latched=0 invalid=0");
    assert_eq!(ctl(&mut d, "levels 1001").0, "ok");
    ok(&mut d, MSG_SET_VALUE, 1, 1);
    ok(&mut d, MSG_SET_DIRECTION, 1, DIR_OUT as u32);
    assert_eq!(ctl(&mut d, "values").0, "ok 1101");
    assert!(ctl(&mut d, "levels 10012").0.starts_with("err"));
}

#[test]
fn control_set_raises_interrupt() {
    let mut d = dev(2);
    input_with_irq(&mut d, 0, IRQ_EDGE_RISING);
    assert!(d.on_events(vec![ev(1, 0)]).is_empty());
    assert!(ctl(&mut d, "get 0").0.contains("queued=1 masked=0"));
    let (r, out) = ctl(&mut d, "set 0 1");
    assert_eq!(r, "ok");
    assert_eq!(events(&out), vec![(0, IRQ_STATUS_VALID)]);
    assert_eq!(ctl(&mut d, "counters 0").0, "ok requests=2 events=1 latched=0 invalid=0");
}

#[test]
fn spurious_event_for_a_disabled_line() {
    let mut d = dev(1);
    assert!(ctl(&mut d, "spurious 0").0.starts_with("err"));
    assert!(d.on_events(vec![ev(1, 0)]).is_empty());
    let (r, out) = ctl(&mut d, "spurious 0");
    assert_eq!(r, "ok");
    assert_eq!(events(&out), vec![(0, IRQ_STATUS_VALID)]);
}

// ---- answers held until released, paced edge trains ----

fn heads(v: &[Completion]) -> Vec<u16> {
    v.iter().map(|c| c.chain.head).collect()
}

#[test]
fn fault_hold_keeps_its_line_in_order_until_released() {
    let mut d = dev(4);
    ctl(&mut d, "fault hold type=get_value line=1 count=1");
    let t0 = Instant::now();
    let out = d.on_requests(
        vec![chain(1, MSG_GET_VALUE, 1, 0), chain(2, MSG_GET_DIRECTION, 1, 0), chain(3, MSG_GET_VALUE, 2, 0)],
        t0,
    );
    assert_eq!(heads(&out), vec![3], "line 2 answers, line 1 waits behind its held request");
    assert!(ctl(&mut d, "get 1").0.contains("pending=2"));
    assert!(ctl(&mut d, "counters").0.ends_with("held=1"));
    // No time lets it out.
    assert!(d.tick(t0 + Duration::from_secs(3600)).is_empty());
    // The count is used up: the next request of the line is not held.
    ctl(&mut d, "set 1 1");
    let (reply, out) = ctl(&mut d, "release 0");
    assert_eq!((reply.as_str(), out.len()), ("ok released=0", 0), "another line's release");
    let (reply, out) = ctl(&mut d, "release 1");
    assert_eq!(reply, "ok released=1");
    assert_eq!(heads(&out), vec![1, 2], "in the line's order");
    // A valid answer, carried out when released: the level set meanwhile.
    assert_eq!((out[0].data.clone(), out[0].used_len), (vec![STATUS_OK, 1], RESPONSE_SIZE));
    assert!(ctl(&mut d, "counters").0.ends_with("held=0"));
    assert!(ctl(&mut d, "get 1").0.contains("pending=0"));
    assert_eq!(ok(&mut d, MSG_GET_VALUE, 1, 0), 1);
}

#[test]
fn release_of_one_line_answers_only_its_requests() {
    let mut d = dev(4);
    ctl(&mut d, "fault drop type=get_value line=1 count=1");
    ctl(&mut d, "fault drop type=get_value line=2 count=1");
    ctl(&mut d, "fault hold type=get_value line=3 count=1");
    let t0 = Instant::now();
    let out = d.on_requests(
        vec![chain(1, MSG_GET_VALUE, 1, 0), chain(2, MSG_GET_VALUE, 2, 0), chain(3, MSG_GET_VALUE, 3, 0)],
        t0,
    );
    assert!(out.is_empty());
    assert!(ctl(&mut d, "counters").0.ends_with("held=3"));
    let (reply, out) = ctl(&mut d, "release 2");
    assert_eq!(reply, "ok released=1");
    assert_eq!(heads(&out), vec![2]);
    assert!(ctl(&mut d, "release 9").0.starts_with("err"));
    let (reply, out) = ctl(&mut d, "release");
    assert_eq!(reply, "ok released=2");
    let mut h = heads(&out);
    h.sort();
    assert_eq!(h, vec![1, 3]);
    assert!(out.iter().all(|c| !is_err(c)));
    assert!(ctl(&mut d, "counters").0.ends_with("held=0"));
}

#[test]
fn paced_edges_wait_for_the_driver() {
    let mut d = dev(1);
    input_with_irq(&mut d, 0, IRQ_EDGE_BOTH);
    assert!(d.on_events(vec![ev(1, 0)]).is_empty());
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    assert_eq!(command(&mut d, "edges 0 3 10000 paced", t0).0, "ok");
    assert!(ctl(&mut d, "get 0").0.ends_with("edges=3"));
    assert_eq!(d.next_deadline(), Some(ms(10)));
    assert!(d.tick(ms(9)).is_empty());
    assert_eq!(events(&d.tick(ms(10))), vec![(0, IRQ_STATUS_VALID)]);
    // The driver has not given the buffer back: however long it takes,
    // no edge is made, none is latched.
    assert!(d.tick(ms(20)).is_empty());
    assert!(d.tick(ms(5000)).is_empty());
    assert_eq!((d.lines[0].level, d.lines[0].stats.latched), (1, 0));
    assert!(ctl(&mut d, "get 0").0.ends_with("edges=2"));
    // Buffer back: the next edge as soon as it is due (its period is over).
    assert!(d.on_events(vec![ev(2, 0)]).is_empty());
    let at = d.next_deadline().unwrap();
    assert!(at <= ms(5000));
    assert_eq!(events(&d.tick(ms(5000))), vec![(0, IRQ_STATUS_VALID)]);
    // Buffer back at once: the next edge waits for its period.
    assert!(d.on_events(vec![ev(3, 0)]).is_empty());
    let at = d.next_deadline().unwrap();
    assert!(d.tick(at - Duration::from_millis(1)).is_empty());
    assert_eq!(events(&d.tick(at)), vec![(0, IRQ_STATUS_VALID)]);
    assert!(ctl(&mut d, "get 0").0.ends_with("edges=0"));
    assert_eq!(d.lines[0].stats.events, 3);
    assert_eq!(d.lines[0].stats.latched, 0);
    assert_eq!(d.next_deadline(), None);
}

#[test]
fn paced_edges_not_delivered_do_not_wait() {
    // A rising-only line keeps its buffer on a falling edge: the train goes on.
    let mut d = dev(1);
    input_with_irq(&mut d, 0, IRQ_EDGE_RISING);
    assert!(d.on_events(vec![ev(1, 0)]).is_empty());
    let t0 = Instant::now();
    d.edges_paced(0, 4, Duration::from_millis(10), t0, false);
    let mut n = 0;
    for i in 1..=10u64 {
        n += events(&d.tick(t0 + Duration::from_millis(10 * i))).len();
        if d.lines[0].held.is_none() {
            assert!(d.on_events(vec![ev(i as u16 + 1, 0)]).is_empty());
        }
    }
    assert_eq!((n, d.edges_left(0), d.lines[0].level), (2, 0, 0));
}

#[test]
fn paced_edges_run_on_the_clock_without_an_interrupt() {
    let mut d = dev(2);
    let t0 = Instant::now();
    d.edges_paced(1, 3, Duration::from_millis(10), t0, false);
    d.tick(t0 + Duration::from_millis(10));
    d.tick(t0 + Duration::from_millis(20));
    assert_eq!((d.lines[1].level, d.edges_left(1)), (0, 1));
    // Enabled with a buffer taken by an edge: waits; disabled again: goes on.
    input_with_irq(&mut d, 1, IRQ_EDGE_BOTH);
    ctl(&mut d, "stop 1");
    d.edges_paced(1, 3, Duration::from_millis(10), t0, false);
    assert!(d.on_events(vec![ev(1, 1)]).is_empty());
    assert_eq!(events(&d.tick(t0 + Duration::from_millis(10))).len(), 1);
    assert!(d.tick(t0 + Duration::from_millis(50)).is_empty());
    assert_eq!(d.edges_left(1), 2);
    let out = d.on_requests(vec![chain(7, MSG_SET_IRQ_TYPE, 1, IRQ_NONE as u32)], t0 + Duration::from_millis(60));
    assert_eq!(heads(&out), vec![7]);
    let at = d.next_deadline().unwrap();
    d.tick(at);
    d.tick(at + Duration::from_millis(10));
    assert_eq!(d.edges_left(1), 0);
    assert_eq!(d.lines[1].stats.latched, 0);
}

#[test]
fn paced_edges_on_an_active_level_are_not_starved() {
    // A level still active takes the buffer back at once: a buffer given
    // since the last flip is enough.
    let mut d = dev(1);
    input_with_irq(&mut d, 0, IRQ_LEVEL_HIGH);
    assert!(d.on_events(vec![ev(1, 0)]).is_empty());
    let t0 = Instant::now();
    d.edges_paced(0, 2, Duration::from_millis(10), t0, false);
    assert_eq!(events(&d.tick(t0 + Duration::from_millis(10))).len(), 1, "high: delivered");
    assert!(d.tick(t0 + Duration::from_millis(30)).is_empty(), "waits for the driver");
    assert_eq!(d.lines[0].level, 1);
    assert_eq!(events(&d.on_events(vec![ev(2, 0)])).len(), 1, "still high: taken again");
    let at = d.next_deadline().unwrap();
    d.tick(at);
    assert_eq!((d.lines[0].level, d.edges_left(0)), (0, 0));
}

#[test]
fn stop_cancels_timed_and_paced_trains() {
    let mut d = dev(1);
    let t0 = Instant::now();
    let mut out = Vec::new();
    d.edges(0, 3, Duration::from_millis(10), t0, &mut out);
    d.edges_paced(0, 4, Duration::from_millis(10), t0, false);
    assert!(ctl(&mut d, "get 0").0.ends_with("edges=7"));
    assert_eq!(ctl(&mut d, "stop 0").0, "ok cancelled=7");
    assert_eq!(d.next_deadline(), None);
    assert!(ctl(&mut d, "edges 0 1 10 slow").0.starts_with("err"));
}

#[test]
fn control_lines_resizes_the_device() {
    let mut d = dev(4);
    assert_eq!(ctl(&mut d, "lines 6").0, "ok");
    assert!(ctl(&mut d, "info").0.starts_with("ok ngpio=6 "));
    assert_eq!(d.lines[5].name, "vgpio5");
    assert_eq!(ctl(&mut d, "lines 65535").0, "ok");
    assert_eq!(d.config_space()[0..2], 65535u16.to_le_bytes());
    assert_eq!(d.lines[65534].name, "vgpio65534");
    ok(&mut d, MSG_GET_VALUE, 65534, 0);
    assert_eq!(ctl(&mut d, "lines 2").0, "ok");
    assert!(ctl(&mut d, "get 3").0.starts_with("err line 3 out of range"));
    assert!(ctl(&mut d, "lines 0").0.starts_with("err"));
}

#[test]
fn event_cycles_time_the_buffer_away() {
    let mut d = dev(2);
    input_with_irq(&mut d, 0, IRQ_EDGE_BOTH);
    assert!(d.on_events(vec![ev(1, 0)]).is_empty());
    // no event yet: a buffer given is no cycle
    assert!(ctl(&mut d, "counters").0.contains("cycles=0 "));
    assert_eq!(events(&ctl(&mut d, "set 0 1").1), vec![(0, IRQ_STATUS_VALID)]);
    std::thread::sleep(Duration::from_millis(2));
    assert!(d.on_events(vec![ev(1, 0)]).is_empty());
    let (r, _) = ctl(&mut d, "counters");
    assert!(r.contains("cycles=1 "), "{r}");
    let p50: u32 = r.split("cycle_p50_us=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(p50 >= 2000, "{r}");
    assert!(r.contains(&format!("cycle_max_us={p50}")), "{r}");
    ctl(&mut d, "reset-counters");
    assert!(ctl(&mut d, "counters").0.contains("cycles=0 cycle_p50_us=0"));
}

#[test]
fn paced_read_edges_wait_for_the_line_to_be_read() {
    // Both edges: the buffer is back at once, but the next flip waits for a
    // GET_VALUE of the line after the last one.
    let mut d = dev(1);
    input_with_irq(&mut d, 0, IRQ_EDGE_BOTH);
    assert!(d.on_events(vec![ev(1, 0)]).is_empty());
    let t0 = Instant::now();
    d.edges_paced(0, 3, Duration::from_millis(10), t0, true);
    assert_eq!(events(&d.tick(t0 + Duration::from_millis(10))).len(), 1);
    assert!(d.on_events(vec![ev(2, 0)]).is_empty());
    // buffer back, not read: no flip however long
    assert!(d.tick(t0 + Duration::from_millis(100)).is_empty());
    assert_eq!(d.edges_left(0), 2);
    assert_eq!(ok(&mut d, MSG_GET_VALUE, 0, 0), 1);
    assert_eq!(events(&d.tick(t0 + Duration::from_millis(110))).len(), 1);
    assert_eq!(d.edges_left(0), 1);
    assert_eq!(d.lines[0].stats.latched, 0);
}
