// The Worker's main module: instantiates the wasm once per isolate and hands each request to
// the Rust fetch handler, through the trap guard (src/js/trap.js): a trap leaves the instance
// unusable, so it is replaced at once and the requests waiting on it get a JSON 500.
import wasmModule from './index_bg.wasm';
import { initSync, fetch as handle, __wbg_reset_state as resetState } from './bindgen/edgechat.js';
import { guard } from './trap.js';

initSync({ module: wasmModule });

const { fetch, trapped } = guard(handle, resetState);
addEventListener('error', trapped);
addEventListener('unhandledrejection', trapped);

export default { fetch };
