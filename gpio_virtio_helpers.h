/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the Rust virtio-gpio driver: the kernel functions it uses that
 * are static inline or macros, so have no symbol to link against. Each is a
 * one-line forward; this header is also what Kbuild runs bindgen over.
 * VGPIO_K612 or VGPIO_K7 (from Kbuild) says which kernel crate the Rust side
 * has: on 7.x it brings its own spinlock_t locks, wait queues and RCU.
 */
#ifndef GPIO_VIRTIO_HELPERS_H
#define GPIO_VIRTIO_HELPERS_H

#include <linux/completion.h>
#include <linux/device.h>
#include <linux/gpio/driver.h>
#include <linux/irq.h>
#include <linux/irqdomain.h>
#include <linux/irq_work.h>
#include <linux/ratelimit.h>
#include <linux/rcupdate.h>
#include <linux/scatterlist.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_gpio.h>
#include <linux/virtio_ids.h>
#include <linux/wait_bit.h>

/* virtio config space and features */
u16 vgpio_cread16(struct virtio_device *vdev, unsigned int offset);
u32 vgpio_cread32(struct virtio_device *vdev, unsigned int offset);
bool vgpio_has_feature(const struct virtio_device *vdev, unsigned int fbit);
void vgpio_device_ready(struct virtio_device *vdev);
void vgpio_synchronize_cbs(struct virtio_device *vdev);
void vgpio_del_vqs(struct virtio_device *vdev);
bool vgpio_log_ratelimit(void);

/* deferred work for irq_chip callbacks */
void vgpio_init_irq_work(struct irq_work *work, void (*func)(struct irq_work *));

/* virtqueues */
bool vgpio_vq_maps(struct virtqueue *vq);
int vgpio_find_vqs(struct virtio_device *vdev, unsigned int nvqs,
		   struct virtqueue *vqs[], vq_callback_t *callbacks[],
		   const char *const names[], const bool direct[]);

/*
 * Interrupt-safe spinlocks: raw (for what irq_chip callbacks touch under the
 * irq descriptor's raw lock) and spinlock_t (everything else; a sleeping
 * lock on PREEMPT_RT), and a wait queue to sleep on under a spinlock_t.
 */
void vgpio_raw_spin_lock_init(raw_spinlock_t *lock, const char *name,
			      struct lock_class_key *key);
unsigned long vgpio_raw_spin_lock_irqsave(raw_spinlock_t *lock);
void vgpio_raw_spin_unlock_irqrestore(raw_spinlock_t *lock, unsigned long flags);
#ifdef VGPIO_K7
bool vgpio_raw_spin_trylock_irqsave(raw_spinlock_t *lock, unsigned long *flags);
void vgpio_raw_spin_assert_is_held(raw_spinlock_t *lock);
int vgpio_wait_var_killable_irq(void *var, spinlock_t *lock, long *timeout,
				void (*before)(void *), void *arg);
int vgpio_sleep_killable_irq(spinlock_t *lock, long *timeout,
			     void (*before)(void *), void *arg);
#else
const char *vgpio_dev_name(const struct device *dev);
void vgpio_wake_up_var(void *var);
void vgpio_spin_lock_init(spinlock_t *lock, const char *name, struct lock_class_key *key);
unsigned long vgpio_spin_lock_irqsave(spinlock_t *lock);
void vgpio_spin_unlock_irqrestore(spinlock_t *lock, unsigned long flags);
void vgpio_init_waitqueue_head(struct wait_queue_head *wq, const char *name,
			       struct lock_class_key *key);
void vgpio_wait_unlocked(struct wait_queue_head *wq, spinlock_t *lock,
			 unsigned long *flags);
int vgpio_wait_var_killable_unlocked(void *var, spinlock_t *lock, unsigned long *flags,
				     long *timeout, void (*before)(void *), void *arg);
int vgpio_sleep_killable_unlocked(spinlock_t *lock, unsigned long *flags, long *timeout,
				  void (*before)(void *), void *arg);
long vgpio_msecs_to_jiffies(unsigned int ms);
unsigned long vgpio_jiffies(void);
#endif
bool vgpio_current_is_exiting(void);
#ifdef VGPIO_K612
void vgpio_might_sleep(void);
void vgpio_rcu_read_lock(void);
void vgpio_rcu_read_unlock(void);
void vgpio_wake_up_all(struct wait_queue_head *wq);
/* bitmaps (7.x: the kernel crate's Bitmap) */
unsigned long vgpio_find_next_bit(const unsigned long *addr, unsigned long size,
				  unsigned long offset);
unsigned long vgpio_find_last_bit(const unsigned long *addr, unsigned long size);
void vgpio_assign_bit(unsigned long nr, unsigned long *addr, bool value);
#endif

/* gpiolib */
int vgpio_gpiochip_add_data(struct gpio_chip *gc, void *data);
void vgpio_gpio_irq_chip_set_chip(struct gpio_chip *gc, const struct irq_chip *chip);
struct gpio_chip *vgpio_irq_data_get_gpio_chip(struct irq_data *d);

#endif
