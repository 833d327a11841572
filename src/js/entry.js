// The Worker's main module: instantiates the wasm once per isolate and hands each request to
// the Rust fetch handler. A trap (a Rust panic: the build aborts on panic) leaves the wasm
// instance unusable, so the next request gets a fresh instance.
import wasmModule from './index_bg.wasm';
import { initSync, fetch as handle, __wbg_reset_state as resetState } from './bindgen/edgechat.js';

initSync({ module: wasmModule });

let broken = false;
const onError = (event) => {
  const error = event?.error ?? event?.reason ?? event;
  if (error instanceof WebAssembly.RuntimeError) broken = true;
};
addEventListener('error', onError);
addEventListener('unhandledrejection', onError);

export default {
  fetch(request, env, ctx) {
    if (broken) {
      broken = false;
      resetState();
    }
    try {
      return handle(request, env, ctx);
    } catch (error) {
      onError(error);
      throw error;
    }
  },
};
