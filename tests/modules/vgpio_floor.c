// SPDX-License-Identifier: GPL-2.0
/*
 * The floor under any virtio-gpio driver, for make bench: a virtio driver
 * for device 41 with no GPIO logic in it. Each read() of its debugfs file
 * /sys/kernel/debug/vgpio_floor/<device> sends one GET_VALUE request for
 * line @line and sleeps until the device answers: what the guest's virtqueue
 * and interrupt path, QEMU and the device cost for one round trip, without
 * gpiolib, a GPIO driver or its locking. The read returns "0\n" or "1\n".
 * Each read at offset 0 is one round trip (pread(fd, buf, 2, 0) repeats
 * it); a read further on is the end of the file, so cat reads it once.
 * One request at a time per device; a request not answered within 10 s
 * leaves the device unusable (its buffers may still be the device's) until
 * it is unbound.
 */

#include <linux/completion.h>
#include <linux/debugfs.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_gpio.h>
#include <linux/virtio_ids.h>

static unsigned int line = 3;
module_param(line, uint, 0644);
MODULE_PARM_DESC(line, "the line each read asks for");

struct vgpio_floor {
	struct virtio_device *vdev;
	struct virtqueue *vq;
	/* one request in flight at a time */
	struct mutex lock;
	/* serializes the ring: add and kick_prepare against get_buf */
	spinlock_t ring;
	struct completion done;
	struct dentry *file;
	unsigned int len;
	bool broken;
	/* separate allocations: the device reads and writes them (DMA) */
	struct virtio_gpio_request *req;
	struct virtio_gpio_response *res;
};

static struct dentry *floor_dir;

static void vgpio_floor_done(struct virtqueue *vq)
{
	struct vgpio_floor *f = vq->vdev->priv;
	unsigned long flags;
	unsigned int len;
	bool got;

	spin_lock_irqsave(&f->ring, flags);
	got = virtqueue_get_buf(vq, &len);
	spin_unlock_irqrestore(&f->ring, flags);
	if (got) {
		f->len = len;
		complete(&f->done);
	}
}

static int vgpio_floor_get(struct vgpio_floor *f, u8 *value)
{
	struct scatterlist out, in, *sgs[] = { &out, &in };
	unsigned long flags;
	bool notify;
	int ret;

	mutex_lock(&f->lock);
	if (f->broken) {
		ret = -EIO;
		goto unlock;
	}
	f->req->type = cpu_to_le16(VIRTIO_GPIO_MSG_GET_VALUE);
	f->req->gpio = cpu_to_le16(line);
	f->req->value = 0;
	sg_init_one(&out, f->req, sizeof(*f->req));
	sg_init_one(&in, f->res, sizeof(*f->res));
	reinit_completion(&f->done);
	spin_lock_irqsave(&f->ring, flags);
	ret = virtqueue_add_sgs(f->vq, sgs, 1, 1, f, GFP_ATOMIC);
	notify = !ret && virtqueue_kick_prepare(f->vq);
	spin_unlock_irqrestore(&f->ring, flags);
	if (ret)
		goto unlock;
	if (notify)
		virtqueue_notify(f->vq);
	if (!wait_for_completion_timeout(&f->done, 10 * HZ)) {
		dev_err(&f->vdev->dev, "GET_VALUE not answered within 10 s\n");
		f->broken = true;
		ret = -ETIMEDOUT;
		goto unlock;
	}
	if (f->len != sizeof(*f->res) || f->res->status != VIRTIO_GPIO_STATUS_OK) {
		ret = -EIO;
		goto unlock;
	}
	*value = f->res->value;
unlock:
	mutex_unlock(&f->lock);
	return ret;
}

static ssize_t vgpio_floor_read(struct file *file, char __user *buf, size_t count,
				loff_t *ppos)
{
	struct vgpio_floor *f = file->private_data;
	char answer[2] = { '0', '\n' };
	u8 value;
	int ret;

	if (!count || *ppos)
		return 0;
	ret = vgpio_floor_get(f, &value);
	if (ret)
		return ret;
	answer[0] += !!value;
	count = min(count, sizeof(answer));
	if (copy_to_user(buf, answer, count))
		return -EFAULT;
	*ppos += count;
	return count;
}

static const struct file_operations vgpio_floor_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.read = vgpio_floor_read,
};

static int vgpio_floor_probe(struct virtio_device *vdev)
{
	struct vgpio_floor *f;
	int ret;

	f = devm_kzalloc(&vdev->dev, sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	f->req = devm_kzalloc(&vdev->dev, sizeof(*f->req), GFP_KERNEL);
	f->res = devm_kzalloc(&vdev->dev, sizeof(*f->res), GFP_KERNEL);
	if (!f->req || !f->res)
		return -ENOMEM;
	f->vdev = vdev;
	mutex_init(&f->lock);
	spin_lock_init(&f->ring);
	init_completion(&f->done);
	vdev->priv = f;
	f->vq = virtio_find_single_vq(vdev, vgpio_floor_done, "requestq");
	if (IS_ERR(f->vq)) {
		ret = PTR_ERR(f->vq);
		dev_err(&vdev->dev, "no requestq: %d\n", ret);
		return ret;
	}
	virtio_device_ready(vdev);
	f->file = debugfs_create_file(dev_name(&vdev->dev), 0400, floor_dir, f,
				      &vgpio_floor_fops);
	return 0;
}

static void vgpio_floor_remove(struct virtio_device *vdev)
{
	struct vgpio_floor *f = vdev->priv;

	/* no reader left in the file, so no request is being sent */
	debugfs_remove(f->file);
	virtio_reset_device(vdev);
	vdev->config->del_vqs(vdev);
	vdev->priv = NULL;
}

static const struct virtio_device_id vgpio_floor_ids[] = {
	{ VIRTIO_ID_GPIO, VIRTIO_DEV_ANY_ID },
	{}
};

static struct virtio_driver vgpio_floor_driver = {
	.driver.name = "vgpio-floor",
	.id_table = vgpio_floor_ids,
	.probe = vgpio_floor_probe,
	.remove = vgpio_floor_remove,
};

static int __init vgpio_floor_init(void)
{
	int ret;

	floor_dir = debugfs_create_dir("vgpio_floor", NULL);
	ret = register_virtio_driver(&vgpio_floor_driver);
	if (ret)
		debugfs_remove(floor_dir);
	return ret;
}
module_init(vgpio_floor_init);

static void __exit vgpio_floor_exit(void)
{
	unregister_virtio_driver(&vgpio_floor_driver);
	debugfs_remove(floor_dir);
}
module_exit(vgpio_floor_exit);

MODULE_DESCRIPTION("virtio-gpio round trip with no GPIO driver logic (benchmark floor)");
MODULE_LICENSE("GPL");
