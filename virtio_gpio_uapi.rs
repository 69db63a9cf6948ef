// SPDX-License-Identifier: GPL-2.0

//! The virtio-gpio wire format (virtio specification, "GPIO Device").
//!
//! Every multi-byte field is little-endian on the wire; the structures are
//! naturally aligned (not packed) and their sizes are checked at compile time.

// The complete wire format is spelled out, used or not.
#![allow(dead_code)]

use core::mem::{offset_of, size_of};

/// Virtio device ID of a GPIO device.
pub(crate) const VIRTIO_ID_GPIO: u32 = 41;
/// Feature bit: the device supports interrupts (and has an eventq).
pub(crate) const VIRTIO_GPIO_F_IRQ: u32 = 0;

/// requestq message types.
pub(crate) const VIRTIO_GPIO_MSG_GET_LINE_NAMES: u16 = 0x0001;
pub(crate) const VIRTIO_GPIO_MSG_GET_DIRECTION: u16 = 0x0002;
pub(crate) const VIRTIO_GPIO_MSG_SET_DIRECTION: u16 = 0x0003;
pub(crate) const VIRTIO_GPIO_MSG_GET_VALUE: u16 = 0x0004;
pub(crate) const VIRTIO_GPIO_MSG_SET_VALUE: u16 = 0x0005;
pub(crate) const VIRTIO_GPIO_MSG_SET_IRQ_TYPE: u16 = 0x0006;

/// requestq response status.
pub(crate) const VIRTIO_GPIO_STATUS_OK: u8 = 0x0;
pub(crate) const VIRTIO_GPIO_STATUS_ERR: u8 = 0x1;

/// Line directions.
pub(crate) const VIRTIO_GPIO_DIRECTION_NONE: u8 = 0x00;
pub(crate) const VIRTIO_GPIO_DIRECTION_OUT: u8 = 0x01;
pub(crate) const VIRTIO_GPIO_DIRECTION_IN: u8 = 0x02;

/// Interrupt trigger types.
pub(crate) const VIRTIO_GPIO_IRQ_TYPE_NONE: u8 = 0x00;
pub(crate) const VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING: u8 = 0x01;
pub(crate) const VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING: u8 = 0x02;
pub(crate) const VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH: u8 = 0x03;
pub(crate) const VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH: u8 = 0x04;
pub(crate) const VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW: u8 = 0x08;

/// eventq response status.
pub(crate) const VIRTIO_GPIO_IRQ_STATUS_INVALID: u8 = 0x0;
pub(crate) const VIRTIO_GPIO_IRQ_STATUS_VALID: u8 = 0x1;

/// A little-endian 16-bit field.
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Le16(u16);

impl Le16 {
    pub(crate) const fn new(v: u16) -> Self {
        Le16(v.to_le())
    }

    pub(crate) const fn get(self) -> u16 {
        u16::from_le(self.0)
    }
}

/// A little-endian 32-bit field.
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Le32(u32);

impl Le32 {
    pub(crate) const fn new(v: u32) -> Self {
        Le32(v.to_le())
    }

    pub(crate) const fn get(self) -> u32 {
        u32::from_le(self.0)
    }
}

/// The device configuration space.
#[repr(C)]
pub(crate) struct VirtioGpioConfig {
    pub(crate) ngpio: Le16,
    pub(crate) padding: [u8; 2],
    pub(crate) gpio_names_size: Le32,
}

/// Offset of `ngpio` in the config space (read with a 16-bit access).
pub(crate) const CONFIG_NGPIO: u32 = offset_of!(VirtioGpioConfig, ngpio) as u32;
/// Offset of `gpio_names_size` in the config space (read with a 32-bit access).
pub(crate) const CONFIG_GPIO_NAMES_SIZE: u32 = offset_of!(VirtioGpioConfig, gpio_names_size) as u32;

/// A requestq request (driver to device).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct VirtioGpioRequest {
    pub(crate) type_: Le16,
    pub(crate) gpio: Le16,
    pub(crate) value: Le32,
}

impl VirtioGpioRequest {
    pub(crate) const fn new(type_: u16, gpio: u16, value: u32) -> Self {
        VirtioGpioRequest {
            type_: Le16::new(type_),
            gpio: Le16::new(gpio),
            value: Le32::new(value),
        }
    }

    /// The request as the device reads it.
    pub(crate) fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0..2].copy_from_slice(&self.type_.get().to_le_bytes());
        b[2..4].copy_from_slice(&self.gpio.get().to_le_bytes());
        b[4..8].copy_from_slice(&self.value.get().to_le_bytes());
        b
    }
}

/// A requestq response (device to driver); GET_LINE_NAMES answers the status
/// byte followed by gpio_names_size bytes instead.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct VirtioGpioResponse {
    pub(crate) status: u8,
    pub(crate) value: u8,
}

impl VirtioGpioResponse {
    pub(crate) const fn from_bytes(b: [u8; 2]) -> Self {
        VirtioGpioResponse {
            status: b[0],
            value: b[1],
        }
    }
}

/// An eventq request (driver to device): the line to be notified about.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct VirtioGpioIrqRequest {
    pub(crate) gpio: Le16,
}

/// An eventq response (device to driver).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct VirtioGpioIrqResponse {
    pub(crate) status: u8,
}

impl VirtioGpioIrqRequest {
    pub(crate) fn to_bytes(gpio: u16) -> [u8; 2] {
        gpio.to_le_bytes()
    }
}

/// The name of a requestq message type, for log lines.
pub(crate) fn msg_name(type_: u16) -> &'static str {
    match type_ {
        VIRTIO_GPIO_MSG_GET_LINE_NAMES => "GET_LINE_NAMES",
        VIRTIO_GPIO_MSG_GET_DIRECTION => "GET_DIRECTION",
        VIRTIO_GPIO_MSG_SET_DIRECTION => "SET_DIRECTION",
        VIRTIO_GPIO_MSG_GET_VALUE => "GET_VALUE",
        VIRTIO_GPIO_MSG_SET_VALUE => "SET_VALUE",
        VIRTIO_GPIO_MSG_SET_IRQ_TYPE => "SET_IRQ_TYPE",
        _ => "unknown",
    }
}

const _: () = {
    assert!(size_of::<VirtioGpioConfig>() == 8);
    assert!(CONFIG_NGPIO == 0 && CONFIG_GPIO_NAMES_SIZE == 4);
    assert!(size_of::<VirtioGpioRequest>() == 8);
    assert!(offset_of!(VirtioGpioRequest, gpio) == 2);
    assert!(offset_of!(VirtioGpioRequest, value) == 4);
    assert!(size_of::<VirtioGpioResponse>() == 2);
    assert!(size_of::<VirtioGpioIrqRequest>() == 2);
    assert!(size_of::<VirtioGpioIrqResponse>() == 1);
};
