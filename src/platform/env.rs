//! The Worker's `env` (bindings, vars and secrets by name) and its execution context
//! (`waitUntil`).

use std::future::Future;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// The `env` object the runtime passes with each request.
    #[derive(Clone)]
    pub type Env;
    /// The execution context passed with each request.
    pub type Context;
    #[wasm_bindgen(method, js_name = waitUntil)]
    fn wait_until_promise(this: &Context, promise: &js_sys::Promise);
}

impl Env {
    /// The binding, var or secret named `name` (undefined when absent).
    pub fn get(&self, name: &str) -> JsValue {
        js_sys::Reflect::get(self, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
    }

    /// A var or secret as a string, or `None` when unset or not a string.
    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).as_string()
    }
}

impl Context {
    /// Keeps the request alive until `task` finishes (up to the platform's limit), whatever
    /// the client does.
    pub fn wait_until(&self, task: impl Future<Output = ()> + 'static) {
        let promise = wasm_bindgen_futures::future_to_promise(async move {
            task.await;
            Ok(JsValue::UNDEFINED)
        });
        self.wait_until_promise(&promise);
    }
}
