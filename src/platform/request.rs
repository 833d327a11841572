//! The incoming request's method, URL and the headers the app reads, taken from the runtime
//! in one call.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/js/platform.js")]
extern "C" {
    #[wasm_bindgen(js_name = requestHead)]
    fn request_head(request: &web_sys::Request, names: &str) -> String;
}

/// Every request header the app reads: a closed set, so none can be asked for without being
/// fetched.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Header {
    RequestId,
    Origin,
    ContentLength,
    ContentType,
    Authorization,
    Accept,
    CacheControl,
    Cookie,
    ConnectingIp,
    StripeSignature,
    PreflightMethod,
    PreflightHeaders,
}

/// The headers' names, in [`Header`] order, one per line.
const NAMES: &str = "x-request-id\norigin\ncontent-length\ncontent-type\nauthorization\naccept\ncache-control\n\
                     cookie\ncf-connecting-ip\nstripe-signature\naccess-control-request-method\n\
                     access-control-request-headers";

pub struct RequestHead {
    pub method: String,
    pub url: String,
    values: Vec<Option<String>>,
}

impl RequestHead {
    pub fn read(request: &web_sys::Request) -> Self {
        let text = request_head(request, NAMES);
        let mut lines = text.split('\n');
        let method = lines.next().unwrap_or_default().to_string();
        let url = lines.next().unwrap_or_default().to_string();
        let values = lines.map(|v| (v != "\0").then(|| v.to_string())).collect();
        Self { method, url, values }
    }

    /// The header's value, if sent.
    pub fn header(&self, header: Header) -> Option<&str> {
        self.values.get(header as usize)?.as_deref()
    }
}
