// SPDX-License-Identifier: GPL-2.0
/*
 * A hog and a quick kernel user of the hogged line, for the tests (issue
 * 12's bug 10: a direction cached at probe must not answer a question asked
 * after a hog changed the line).
 *
 * At load, line @line of the chip labelled @label (both drivers label it
 * with the virtio device's name) is hogged as an output driven high: by a
 * machine hog table on kernels that have them, else by a software node
 * with a "gpio-hog" child attached to the virtio device (@label, found as
 * a child of @parent on the bus @bus, "pci" or "platform"). Load it while the device is unbound; gpiolib hogs the line
 * inside gpiochip_add_data when the device is bound, after it asked each
 * line's direction.
 *
 * A kernel thread (on CPU 1 when it is online) looks the chip up by label
 * as fast as it can from load on, and as soon as gpiolib shows the chip
 * (the moment it is registered, before the driver's probe returns) asks the
 * hogged line's direction with gpiod_get_direction, which also sets
 * gpiolib's record of it. Read-only parameters:
 *   done   1 once it asked (or gave up after @wait_s seconds)
 *   seen   what it got: 0 output, 1 input, a negative errno (-ETIMEDOUT:
 *          no chip within @wait_s)
 *   early  1 if the device's probe had not returned yet when it got it
 *          (so the question fell where a probe-time answer could be stale)
 *   polls  how many lookups it took
 * Unbind the device before unloading (the hog is freed with the chip);
 * unloading unbinds it otherwise.
 */

#include <linux/device.h>
#include <linux/err.h>
#include <linux/gpio/consumer.h>
#include <linux/gpio/driver.h>
#include <linux/gpio/machine.h>
#include <linux/jiffies.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/platform_device.h>
#include <linux/property.h>
#include <linux/sched.h>

static char *label;
module_param(label, charp, 0444);
static int line;
module_param(line, int, 0444);
static char *parent;
module_param(parent, charp, 0444);
static char *bus = "pci";
module_param(bus, charp, 0444);
static unsigned int wait_s = 60;
module_param(wait_s, uint, 0444);

static bool done;
module_param(done, bool, 0444);
static int seen;
module_param(seen, int, 0444);
static bool early;
module_param(early, bool, 0444);
static unsigned int polls;
module_param(polls, uint, 0444);

static struct task_struct *watcher;

static int watch(void *unused)
{
	unsigned long end = jiffies + wait_s * HZ;

	while (!kthread_should_stop()) {
		struct gpio_device *gdev = gpio_device_find_by_label(label);

		WRITE_ONCE(polls, polls + 1);
		if (gdev) {
			struct gpio_desc *desc = gpio_device_get_desc(gdev, line);
			/* the virtio device: bound once its probe returned */
			struct device *vd = gpio_device_to_device(gdev)->parent;

			WRITE_ONCE(seen, IS_ERR(desc) ? PTR_ERR(desc) :
						     gpiod_get_direction(desc));
			WRITE_ONCE(early, vd && !device_is_bound(vd));
			gpio_device_put(gdev);
			break;
		}
		if (time_after(jiffies, end)) {
			WRITE_ONCE(seen, -ETIMEDOUT);
			break;
		}
		cond_resched();
	}
	WRITE_ONCE(done, true);
	/* kthread_stop() is what ends it */
	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (kthread_should_stop())
			break;
		schedule();
	}
	__set_current_state(TASK_RUNNING);
	return 0;
}

#ifdef GPIO_HOG
static struct gpiod_hog hogs[2];

static int hog_add(void)
{
	hogs[0] = GPIO_HOG(label, line, "vgpio-hog", GPIO_ACTIVE_HIGH,
			   GPIOD_OUT_HIGH);
	gpiod_add_hogs(hogs);
	return 0;
}

static void hog_remove(void)
{
	gpiod_remove_hogs(hogs);
}
#else
static u32 hog_gpios[2];
static const struct property_entry hog_props[] = {
	PROPERTY_ENTRY_BOOL("gpio-hog"),
	PROPERTY_ENTRY_U32_ARRAY("gpios", hog_gpios),
	PROPERTY_ENTRY_BOOL("output-high"),
	PROPERTY_ENTRY_STRING("line-name", "vgpio-hog"),
	{}
};
static const struct software_node chip_node = { .name = "vgpio-hog-chip" };
static const struct software_node hog_node = {
	.name = "hog",
	.parent = &chip_node,
	.properties = hog_props,
};
static struct device *hog_dev;

static int hog_add(void)
{
	const struct bus_type *b;
	struct device *p;
	int ret;

	if (!parent)
		return -EINVAL;
	if (IS_ENABLED(CONFIG_PCI) && !strcmp(bus, "pci"))
		b = &pci_bus_type;
	else if (!strcmp(bus, "platform"))
		b = &platform_bus_type;
	else
		return -EINVAL;
	p = bus_find_device_by_name(b, NULL, parent);
	if (!p)
		return -ENODEV;
	hog_dev = device_find_child_by_name(p, label);
	put_device(p);
	if (!hog_dev)
		return -ENODEV;
	if (hog_dev->driver) {
		ret = -EBUSY;
		goto put;
	}
	hog_gpios[0] = line;
	ret = device_add_software_node(hog_dev, &chip_node);
	if (ret)
		goto put;
	ret = software_node_register(&hog_node);
	if (ret)
		goto remove;
	return 0;
remove:
	device_remove_software_node(hog_dev);
put:
	put_device(hog_dev);
	return ret;
}

static void hog_remove(void)
{
	/*
	 * A chip registered on the node holds a reference to it: unbind the
	 * device first, or the node would outlive this module's data.
	 */
	device_release_driver(hog_dev);
	software_node_unregister(&hog_node);
	device_remove_software_node(hog_dev);
	put_device(hog_dev);
}
#endif

static int __init vgpio_hog_init(void)
{
	int ret;

	if (!label || line < 0)
		return -EINVAL;
	ret = hog_add();
	if (ret)
		return ret;
	watcher = kthread_create(watch, NULL, "vgpio_hog");
	if (IS_ERR(watcher)) {
		hog_remove();
		return PTR_ERR(watcher);
	}
	if (cpu_online(1))
		kthread_bind(watcher, 1);
	get_task_struct(watcher);
	wake_up_process(watcher);
	return 0;
}

static void __exit vgpio_hog_exit(void)
{
	kthread_stop_put(watcher);
	hog_remove();
}

module_init(vgpio_hog_init);
module_exit(vgpio_hog_exit);
MODULE_DESCRIPTION("virtio-gpio tests: a hog, and a kernel user that asks its direction at once");
MODULE_LICENSE("GPL");
