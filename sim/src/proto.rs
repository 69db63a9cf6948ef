// SPDX-License-Identifier: GPL-2.0
//! virtio-gpio wire constants (virtio spec, "GPIO Device"), device side.

pub const VIRTIO_GPIO_F_IRQ: u64 = 0;

pub const MSG_GET_LINE_NAMES: u16 = 1;
pub const MSG_GET_DIRECTION: u16 = 2;
pub const MSG_SET_DIRECTION: u16 = 3;
pub const MSG_GET_VALUE: u16 = 4;
pub const MSG_SET_VALUE: u16 = 5;
pub const MSG_SET_IRQ_TYPE: u16 = 6;

pub const STATUS_OK: u8 = 0;
pub const STATUS_ERR: u8 = 1;

pub const DIR_NONE: u8 = 0;
pub const DIR_OUT: u8 = 1;
pub const DIR_IN: u8 = 2;

pub const IRQ_NONE: u8 = 0;
pub const IRQ_EDGE_RISING: u8 = 1;
pub const IRQ_EDGE_FALLING: u8 = 2;
pub const IRQ_EDGE_BOTH: u8 = 3;
pub const IRQ_LEVEL_HIGH: u8 = 4;
pub const IRQ_LEVEL_LOW: u8 = 8;

pub const IRQ_STATUS_INVALID: u8 = 0;
pub const IRQ_STATUS_VALID: u8 = 1;

/// Size of a requestq request: le16 type, le16 gpio, le32 value.
pub const REQUEST_SIZE: usize = 8;
/// Size of a requestq response other than GET_LINE_NAMES: u8 status, u8 value.
pub const RESPONSE_SIZE: u32 = 2;
/// Size of an eventq request: le16 gpio.
pub const IRQ_REQUEST_SIZE: usize = 2;
/// Size of an eventq response: u8 status.
pub const IRQ_RESPONSE_SIZE: u32 = 1;

/// Message type names, indexed by type (0 is not a message).
pub const MSG_NAMES: [&str; 7] = [
    "bad_type",
    "get_line_names",
    "get_direction",
    "set_direction",
    "get_value",
    "set_value",
    "set_irq_type",
];

pub fn msg_from_name(s: &str) -> Option<u16> {
    MSG_NAMES
        .iter()
        .position(|n| *n == s)
        .filter(|&i| i > 0)
        .map(|i| i as u16)
}

pub fn dir_name(d: u8) -> &'static str {
    match d {
        DIR_OUT => "out",
        DIR_IN => "in",
        _ => "none",
    }
}

pub fn irq_name(t: u8) -> &'static str {
    match t {
        IRQ_EDGE_RISING => "rising",
        IRQ_EDGE_FALLING => "falling",
        IRQ_EDGE_BOTH => "both",
        IRQ_LEVEL_HIGH => "high",
        IRQ_LEVEL_LOW => "low",
        _ => "none",
    }
}

pub fn valid_irq_type(t: u32) -> bool {
    matches!(
        t as u8,
        IRQ_NONE | IRQ_EDGE_RISING | IRQ_EDGE_FALLING | IRQ_EDGE_BOTH | IRQ_LEVEL_HIGH | IRQ_LEVEL_LOW
    ) && t <= 0xff
}
