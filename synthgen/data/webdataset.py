"""The former home of synthgen.dataset.webdataset, whose `shard_pipeline` README.md named for
users' training code: kept so that code keeps running. New code imports synthgen.dataset.webdataset."""
from synthgen.dataset.webdataset import decode_image, decode_mask, decode_points, decode_sample, shard_pipeline  # noqa: F401
