// Package kvevents follows vLLM's KV-cache events, the precise side of
// kvgate's cache-aware picking.
//
// vLLM (--kv-events-config with the zmq publisher) publishes every change
// of its prefix cache on a ZMQ PUB socket as multipart messages: topic, an
// 8-byte big-endian sequence number, and a msgpack KVEventBatch of
// BlockStored, BlockRemoved and AllBlocksCleared events. A ROUTER socket
// answers a request for a start sequence number with every batch it still
// keeps from there, then an end marker (sequence -1, empty payload).
//
// It owns the decoder (Decoder: both the array_like and the map encodings
// vLLM releases have used, by field name, bounded), the per-endpoint
// Subscriber (SUB socket on go-zeromq/zmq4, pure Go; sequence checks, gap
// replay over a DEALER socket, reconnection with backoff), and the client
// of the model server's POST /tokenize endpoint (Tokenizer: bounded,
// cached, timed out), which gives a request the token ids the events are
// written in. Events land in a cache.TokenIndex, which rehashes every
// stored block from its token ids (engine hashes are never trusted to
// match prompts).
//
// It must not choose endpoints (package pick reads the index), read
// configuration files (the proxy passes Options from package config), or
// hold defaults (config/defaults.go does).
package kvevents
