"""The Kinesis Video Streams client: the MKV (EBML) stream parser (`parser`, `ebml`), the GetMedia
reader (`reader`: reconnects, continuation tokens, silent cameras), the MKV writer and PutMedia
client (`mkv_writer`, `camera_sim`: `make camera-sim`), and the local KVS twin (`local_media`: the
GetMedia/PutMedia data plane moto lacks). A library: it imports nothing of the worker; the worker's
`FrameSource` for KVS and its H.264 decoder are `worker.kvs_source` and `worker.decoder`."""
