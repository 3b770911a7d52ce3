"""The clip archive: camera footage as MP4 clips in S3, listed in per-day manifests, with operator
feedback as labels. `archive.archiver` is the front door (`Archiver`, the CLI); the modules here:

- `errors`: `ArchiveError`;
- `keys`: every S3 key the archive writes (clips, alert clips, manifests, feedback, temporaries);
- `schedule`: which clips to cut and when (`ScheduleConfig`, `plan_clips`, `ArchiveScheduler`);
- `local_cut`: the local cut (PyAV remux between keyframes, no re-encoding) and clip probing;
- `clip_source`: the `ClipSource` seam (`LocalClipSource`; `kvs.KvsClipSource` for AWS);
- `kvs`: Kinesis Video Streams archived media (`GetDataEndpoint`, `ListFragments`, `GetClip`);
- `store`: atomic clip upload and idempotent, conditional manifest writes;
- `labels`: the operator's feedback object and the manifest `events` it becomes;
- `runner`: a thread that archives due clips (the worker's hook).
"""
