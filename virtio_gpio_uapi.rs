// SPDX-License-Identifier: GPL-2.0

//! The virtio-gpio wire format (virtio specification, "GPIO Device"), from
//! the kernel's own header, include/uapi/linux/virtio_gpio.h, which Kbuild
//! runs bindgen over with the other bindings: every number below is the
//! header's, narrowed to the field it travels in (checked at compile time).
//!
//! Every multi-byte field is little-endian on the wire; the structures are
//! naturally aligned (not packed). The typed structures here carry their
//! endianness in their field types; their layout is checked at compile time
//! against the header's.

// The complete wire format is spelled out, used or not.
#![allow(dead_code)]

use core::mem::{offset_of, size_of};

use super::bindings as c;

/// A `#define` of the header as the byte its field is (fails to compile
/// if it does not fit).
const fn u8_of(v: u32) -> u8 {
    assert!(v <= u8::MAX as u32);
    v as u8
}

/// A `#define` of the header as the 16-bit field it travels in.
const fn u16_of(v: u32) -> u16 {
    assert!(v <= u16::MAX as u32);
    v as u16
}

/// Virtio device ID of a GPIO device.
pub(crate) const VIRTIO_ID_GPIO: u32 = c::VIRTIO_ID_GPIO;
/// Feature bit: the device supports interrupts (and has an eventq).
pub(crate) const VIRTIO_GPIO_F_IRQ: u32 = c::VIRTIO_GPIO_F_IRQ;

/// requestq message types (the header calls the first GET_NAMES and the
/// last IRQ_TYPE; the specification's names are used here).
pub(crate) const VIRTIO_GPIO_MSG_GET_LINE_NAMES: u16 = u16_of(c::VIRTIO_GPIO_MSG_GET_NAMES);
pub(crate) const VIRTIO_GPIO_MSG_GET_DIRECTION: u16 = u16_of(c::VIRTIO_GPIO_MSG_GET_DIRECTION);
pub(crate) const VIRTIO_GPIO_MSG_SET_DIRECTION: u16 = u16_of(c::VIRTIO_GPIO_MSG_SET_DIRECTION);
pub(crate) const VIRTIO_GPIO_MSG_GET_VALUE: u16 = u16_of(c::VIRTIO_GPIO_MSG_GET_VALUE);
pub(crate) const VIRTIO_GPIO_MSG_SET_VALUE: u16 = u16_of(c::VIRTIO_GPIO_MSG_SET_VALUE);
pub(crate) const VIRTIO_GPIO_MSG_SET_IRQ_TYPE: u16 = u16_of(c::VIRTIO_GPIO_MSG_IRQ_TYPE);

/// requestq response status.
pub(crate) const VIRTIO_GPIO_STATUS_OK: u8 = u8_of(c::VIRTIO_GPIO_STATUS_OK);
pub(crate) const VIRTIO_GPIO_STATUS_ERR: u8 = u8_of(c::VIRTIO_GPIO_STATUS_ERR);

/// Line directions.
pub(crate) const VIRTIO_GPIO_DIRECTION_NONE: u8 = u8_of(c::VIRTIO_GPIO_DIRECTION_NONE);
pub(crate) const VIRTIO_GPIO_DIRECTION_OUT: u8 = u8_of(c::VIRTIO_GPIO_DIRECTION_OUT);
pub(crate) const VIRTIO_GPIO_DIRECTION_IN: u8 = u8_of(c::VIRTIO_GPIO_DIRECTION_IN);

/// Interrupt trigger types.
pub(crate) const VIRTIO_GPIO_IRQ_TYPE_NONE: u8 = u8_of(c::VIRTIO_GPIO_IRQ_TYPE_NONE);
pub(crate) const VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING: u8 = u8_of(c::VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
pub(crate) const VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING: u8 =
    u8_of(c::VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING);
pub(crate) const VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH: u8 = u8_of(c::VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
pub(crate) const VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH: u8 = u8_of(c::VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH);
pub(crate) const VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW: u8 = u8_of(c::VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW);

/// eventq response status.
pub(crate) const VIRTIO_GPIO_IRQ_STATUS_INVALID: u8 = u8_of(c::VIRTIO_GPIO_IRQ_STATUS_INVALID);
pub(crate) const VIRTIO_GPIO_IRQ_STATUS_VALID: u8 = u8_of(c::VIRTIO_GPIO_IRQ_STATUS_VALID);

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

// The typed structures are the header's, field for field.
const _: () = {
    assert!(size_of::<VirtioGpioConfig>() == size_of::<c::virtio_gpio_config>());
    assert!(offset_of!(VirtioGpioConfig, ngpio) == offset_of!(c::virtio_gpio_config, ngpio));
    assert!(
        offset_of!(VirtioGpioConfig, gpio_names_size)
            == offset_of!(c::virtio_gpio_config, gpio_names_size)
    );
    assert!(size_of::<VirtioGpioRequest>() == size_of::<c::virtio_gpio_request>());
    assert!(offset_of!(VirtioGpioRequest, type_) == offset_of!(c::virtio_gpio_request, type_));
    assert!(offset_of!(VirtioGpioRequest, gpio) == offset_of!(c::virtio_gpio_request, gpio));
    assert!(offset_of!(VirtioGpioRequest, value) == offset_of!(c::virtio_gpio_request, value));
    assert!(size_of::<VirtioGpioResponse>() == size_of::<c::virtio_gpio_response>());
    assert!(offset_of!(VirtioGpioResponse, value) == offset_of!(c::virtio_gpio_response, value));
    assert!(size_of::<VirtioGpioIrqRequest>() == size_of::<c::virtio_gpio_irq_request>());
    assert!(size_of::<VirtioGpioIrqResponse>() == size_of::<c::virtio_gpio_irq_response>());
    // `to_bytes` writes exactly the request.
    assert!(size_of::<VirtioGpioRequest>() == 8);
};
