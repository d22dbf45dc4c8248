// Package server is kiln's inference server: fasthttp speaking the Open
// Inference Protocol v2 (KServe/Triton REST), with the binary tensor data
// extension, a convenience image endpoint, Prometheus metrics, a dynamic
// batcher per model and hot reload of model versions from a repository.
//
// Endpoints:
//
//	GET  /v2/health/live, /v2/health/ready      (never need the token)
//	GET  /v2                                    server metadata
//	GET  /v2/models/{name}[/versions/{v}]       model metadata
//	GET  /v2/models/{name}[/versions/{v}]/ready
//	POST /v2/models/{name}[/versions/{v}]/infer JSON or binary tensors
//	POST /v1/models/{name}:classify[?top=K&invert=true]  PNG/JPEG body
//	GET  /metrics                               Prometheus
//
// Every model has one input "input", [N, H, W, C], FP32 (already scaled)
// or UINT8 (raw pixels, multiplied by the model's scale), and two outputs:
// "probabilities" (FP32 [N, classes]) and "class" (INT64 [N], arg-max).
//
// Concurrency: each loaded model version has one worker goroutine that owns
// its engine.Model and gathers queued requests into batches (up to
// Config.MaxBatch samples, waiting at most Config.MaxQueueDelay after the
// first). Backends are single-goroutine and one backend serves every model
// of the process, so the server holds one mutex per backend (Server.bmu)
// around every backend use: each batch, each load and warm-up, each free.
// Workers of different models therefore never run on the backend at the
// same time. With a zero MaxQueueDelay, a request that finds its model's
// queue empty and the backend free runs on its own handler goroutine under
// the same mutex (a batch of its own, as the worker would have made it),
// which saves two goroutine hand-offs at low load; it does not when a
// batcher already waits for the backend. Queues are bounded: a request
// finding its model's queue full is answered 503 at once. A request whose
// deadline passes before its batch starts computing (still queued, or
// gathered into a batch that waits for the backend while another model's
// batch or a model load holds it) gets 504 at its deadline. A panic in the
// backend during a batch answers that batch's requests 500 and is logged;
// the server serves on.
//
// Versions: the newest version directory whose model file loads and warms
// up serves; a new one is loaded beside it and swapped in, and the old one
// is freed after its last request is answered. A broken file is reported
// and not retried until it changes; the highest version below it that
// loads serves instead, usually the one already serving. When the serving
// version's own file breaks and no older version loads, its copy in memory
// keeps serving; so it does, with no fallback, while its directory is there
// without the file (removed to be replaced), until the file is back. A
// load that fails for a reason other than the file's contents (the device
// out of memory, a file that cannot be read) is retried at every scan and
// logged once per message. A model directory with no version directory is
// unloaded: to deploy, add the new version before removing the old one.
// Entries that do not fit the layout are logged once and skipped.
//
// Outputs are checked before they are encoded: a request whose outputs are
// not all finite is answered 400 on /infer (an input far outside the
// model's range overflows it) and 500 on :classify (the model is broken),
// never 200 with null probabilities; other requests of its batch are not
// affected.
//
// Shutdown closes the listener at once and waits for the requests in
// flight, for a repository poll in progress (a model it loads meanwhile is
// freed, not served) and for replaced versions still being freed; when its
// context ends first it returns an error holding the backend lock, so
// nothing runs on the backend afterwards, or, when a model load is still
// in progress, without waiting for it: that load frees what it loaded and
// keeps the backend lock in its stead.
package server
