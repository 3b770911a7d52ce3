"""Kinesis Video Streams: the MKV (EBML) stream parser, the GetMedia reader, H.264 decoding of
fragments, `KvsSource` (the `FrameSource` for KVS), and the MKV writer / PutMedia client that
`make camera-sim` uses."""
