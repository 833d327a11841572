// The Worker's main module: instantiates the wasm once per isolate and hands each request to
// the Rust fetch handler, through the trap guard (src/js/trap.js): a trap leaves the instance
// unusable, so it is replaced at once and the requests waiting on it get a JSON 500.
import wasmModule from './index_bg.wasm';
import { initSync, fetch as handle, __wbg_reset_state as resetState, UserTurns as RustTurns } from './bindgen/edgechat.js';
import { guard } from './trap.js';

initSync({ module: wasmModule });

const { fetch, trapped, generation } = guard(handle, resetState);
addEventListener('error', trapped);
addEventListener('unhandledrejection', trapped);

export default { fetch };

/**
 * The turn object (src/objects/turns.rs). Its Rust half lives in the wasm instance: after a
 * trap replaces the instance, the next call makes a new Rust half, which ends as `error` the
 * turns the lost one was running (they are recorded in the object's storage).
 */
export class UserTurns {
  constructor(state, env) {
    this.state = state;
    this.env = env;
    this.made = -1;
  }

  inner() {
    if (this.made !== generation()) {
      this.rust = new RustTurns(this.state, this.env);
      this.made = generation();
    }
    return this.rust;
  }

  fetch(request) {
    return this.inner().fetch(request);
  }

  alarm() {
    return this.inner().alarm();
  }
}
