//! What a model call may ask for before it is counted: the output cap (`max_tokens`,
//! `max_completion_tokens`) against the route's, the choices (`n`) against the plan's, the
//! cost-changing fields against the route's list, the fallbacks the plan allows, and the
//! tokens the call reserves (its worst case).

use crate::gateway::{GatewayRequest, OpenAiError};
use crate::llm::provider::Provider;
use crate::llm::routing::ModelRoute;
use crate::plans::Plan;

/// Fields of OpenAI's chat-completions request that change what the provider charges for a
/// call: a pricier or cheaper processing tier (`service_tier`), a per-call search fee
/// (`web_search_options`), audio tokens (`audio`, `modalities`), rejected prediction tokens
/// billed as output (`prediction`), stored completions (`store`), and more reasoning or output
/// tokens for the same answer (`reasoning_effort`, `verbosity`). A route lets them through
/// only when its `allow_fields` lists them. Sorted by name.
pub const GOVERNED_FIELDS: &[&str] = &[
    "audio",
    "modalities",
    "prediction",
    "reasoning_effort",
    "service_tier",
    "store",
    "verbosity",
    "web_search_options",
];

/// The tokens an admitted call reserves from the day's budget: its prompt as estimated and
/// its longest possible answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserve {
    pub prompt_tokens: u64,
    /// The output cap times the choices asked for.
    pub completion_tokens: u64,
}

impl Reserve {
    pub fn total(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// An admissible call: the routes it may take (the requested model first) and the output
/// tokens it may use at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admissible {
    pub chain: Vec<ModelRoute>,
    pub completion_tokens: u64,
}

/// Checks a gateway request against its model's route (the first of `chain`) and the
/// caller's `plan`: 400 naming the parameter for a request that route cannot take. The
/// fallbacks kept are those the plan allows that could take the same request; the output cap
/// is the one sent, else the largest of the kept routes'.
pub fn gateway(req: &GatewayRequest, chain: Vec<ModelRoute>, plan: &Plan) -> Result<Admissible, OpenAiError> {
    if let (Some(a), Some(b)) = (req.max_tokens_field, req.max_completion_tokens) {
        if a != b {
            let message = format!("max_tokens ({a}) and max_completion_tokens ({b}) must be equal when both are sent");
            return Err(OpenAiError::invalid("max_tokens", message));
        }
    }
    let n = req.n.unwrap_or(1);
    if n > plan.max_n {
        let message = format!("n is {n}, above the {} choices per request of the {} plan", plan.max_n, plan.name);
        return Err(OpenAiError::invalid("n", message));
    }
    let Some(primary) = chain.first() else {
        return Err(OpenAiError::model_not_found(&req.model));
    };
    fits(req, primary, n)?;
    let chain = in_plan(chain, plan, |route| fits(req, route, n).is_ok());
    let cap = req.max_tokens.map_or_else(|| longest_answer(&chain), u64::from);
    Ok(Admissible { completion_tokens: cap.saturating_mul(u64::from(n)), chain })
}

/// A chat turn's routes under `plan` (the requested model first, then the fallbacks the plan
/// allows) and its output cap, the largest of theirs.
pub fn chat(chain: Vec<ModelRoute>, plan: &Plan) -> Admissible {
    let chain = in_plan(chain, plan, |_| true);
    Admissible { completion_tokens: longest_answer(&chain), chain }
}

/// The first route, then the fallbacks the plan allows and `usable` accepts.
pub(crate) fn in_plan(chain: Vec<ModelRoute>, plan: &Plan, usable: impl Fn(&ModelRoute) -> bool) -> Vec<ModelRoute> {
    chain
        .into_iter()
        .enumerate()
        .filter(|(i, r)| *i == 0 || (plan.allows_model(&r.name) && usable(r)))
        .map(|(_, r)| r)
        .collect()
}

fn longest_answer(chain: &[ModelRoute]) -> u64 {
    chain.iter().map(|r| u64::from(r.max_output_tokens)).max().unwrap_or(0)
}

/// Whether `route` can take the request: its cost-changing fields allowed, its output cap
/// within the route's, and `n` choices from a provider that makes more than one.
fn fits(req: &GatewayRequest, route: &ModelRoute, n: u32) -> Result<(), OpenAiError> {
    for &field in GOVERNED_FIELDS {
        // A null is what an SDK sends for a field left unset: it costs nothing.
        let sent = req.body.get(field).is_some_and(|v| v.get() != "null");
        if sent && !route.allows_field(field) {
            let message = format!("{field} changes the price of a call and is not enabled for model {}", route.name);
            return Err(OpenAiError::invalid(field, message));
        }
    }
    let asked = [("max_completion_tokens", req.max_completion_tokens), ("max_tokens", req.max_tokens_field)];
    if let Some((field, value)) = asked.into_iter().find_map(|(f, v)| v.map(|v| (f, v))) {
        if value > route.max_output_tokens {
            let message = format!(
                "{field} is too large: {value}. Model {} supports at most {} completion tokens",
                route.name, route.max_output_tokens
            );
            return Err(OpenAiError::invalid(field, message));
        }
    }
    if n > 1 && route.provider != Provider::OpenAi {
        return Err(OpenAiError::invalid("n", format!("model {} returns one choice per request", route.name)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::parse_request;
    use crate::llm::routing::Routes;
    use crate::plans::Plans;

    const ROUTES: &str = r#"{"default":"a","models":{
        "a":{"provider":"openai","max_output_tokens":100,"allow_fields":["service_tier"],"fallbacks":["big","claude","other"]},
        "big":{"provider":"openai","max_output_tokens":500,"allow_fields":["service_tier"]},
        "claude":{"provider":"anthropic","max_output_tokens":300,"allow_fields":["service_tier"]},
        "other":{"provider":"openai","max_output_tokens":50},
        "plain":{"provider":"openai","max_output_tokens":100}}}"#;

    fn chain(name: &str) -> Vec<ModelRoute> {
        Routes::parse(ROUTES).unwrap().chain(name).into_iter().cloned().collect()
    }

    fn plan(max_n: u32, models: &str) -> Plan {
        let json = format!(
            r#"{{"free":{{"requests_per_minute":1,"tokens_per_day":1,"concurrent_streams":1,"max_n":{max_n},"models":{models}}}}}"#
        );
        Plans::parse(&json).unwrap().get("free").clone()
    }

    fn request(extra: &str) -> GatewayRequest {
        let body = format!(r#"{{"model":"a","messages":[{{"role":"user","content":"hi"}}]{extra}}}"#);
        parse_request(body.as_bytes()).unwrap()
    }

    fn refused(extra: &str, model: &str, plan: &Plan) -> (String, String) {
        let err = gateway(&request(extra), chain(model), plan).unwrap_err();
        assert_eq!((err.status, err.kind), (400, "invalid_request_error"));
        (err.param.unwrap_or_default(), err.message)
    }

    fn names(a: &Admissible) -> Vec<&str> {
        a.chain.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn a_request_reserves_its_output_cap_times_its_choices() {
        let all = plan(4, r#"["*"]"#);
        assert_eq!(gateway(&request(r#","max_tokens":40"#), chain("a"), &all).unwrap().completion_tokens, 40);
        assert_eq!(
            gateway(&request(r#","max_completion_tokens":40,"n":3"#), chain("a"), &all).unwrap().completion_tokens,
            120
        );
        // Nothing sent: the longest answer any route of the chain may give.
        let unbounded = gateway(&request(""), chain("a"), &all).unwrap();
        assert_eq!(names(&unbounded), ["a", "big", "claude", "other"]);
        assert_eq!(unbounded.completion_tokens, 500);
        assert_eq!(Reserve { prompt_tokens: 7, completion_tokens: 500 }.total(), 507);
        assert_eq!(Reserve { prompt_tokens: u64::MAX, completion_tokens: 1 }.total(), u64::MAX);
    }

    #[test]
    fn an_output_cap_above_the_routes_is_refused_naming_the_field() {
        let all = plan(1, r#"["*"]"#);
        let (param, message) = refused(r#","max_tokens":101"#, "a", &all);
        assert_eq!(param, "max_tokens");
        assert_eq!(message, "max_tokens is too large: 101. Model a supports at most 100 completion tokens");
        assert_eq!(refused(r#","max_completion_tokens":5000000000"#, "a", &all).0, "max_completion_tokens");
        assert_eq!(refused(r#","max_tokens":101,"max_completion_tokens":101"#, "a", &all).0, "max_completion_tokens");
        assert!(gateway(&request(r#","max_tokens":100,"max_completion_tokens":100"#), chain("a"), &all).is_ok());
        // A fallback whose cap is smaller than the one asked for is not tried.
        let kept = gateway(&request(r#","max_tokens":100"#), chain("a"), &all).unwrap();
        assert_eq!(names(&kept), ["a", "big", "claude"]);
    }

    #[test]
    fn max_tokens_and_max_completion_tokens_must_agree() {
        let (param, message) = refused(r#","max_tokens":10,"max_completion_tokens":20"#, "a", &plan(1, r#"["*"]"#));
        assert_eq!(param, "max_tokens");
        assert_eq!(message, "max_tokens (10) and max_completion_tokens (20) must be equal when both are sent");
    }

    #[test]
    fn choices_are_bounded_by_the_plan_and_by_the_provider() {
        let one = plan(1, r#"["*"]"#);
        let (param, message) = refused(r#","n":2"#, "a", &one);
        assert_eq!(param, "n");
        assert_eq!(message, "n is 2, above the 1 choices per request of the free plan");
        assert!(gateway(&request(r#","n":1"#), chain("a"), &one).is_ok());
        let four = plan(4, r#"["*"]"#);
        assert_eq!(
            refused(r#","n":2"#, "claude", &four),
            ("n".into(), "model claude returns one choice per request".into())
        );
        // A translated fallback cannot make two choices: it is left out of the chain.
        assert_eq!(names(&gateway(&request(r#","n":2"#), chain("a"), &four).unwrap()), ["a", "big", "other"]);
    }

    #[test]
    fn cost_changing_fields_pass_only_where_the_route_allows_them() {
        let all = plan(1, r#"["*"]"#);
        let (param, message) = refused(r#","service_tier":"priority""#, "plain", &all);
        assert_eq!(param, "service_tier");
        assert_eq!(message, "service_tier changes the price of a call and is not enabled for model plain");
        for field in ["web_search_options", "audio", "modalities", "prediction", "store", "reasoning_effort"] {
            assert_eq!(refused(&format!(r#","{field}":{{}}"#), "a", &all).0, field);
        }
        let allowed = gateway(&request(r#","service_tier":"priority""#), chain("a"), &all).unwrap();
        assert_eq!(names(&allowed), ["a", "big", "claude"], "a fallback without the field is not tried");
        let unknown =
            gateway(&request(r#","x_trace":{"id":1},"service_tier":null,"store":null"#), chain("plain"), &all);
        assert!(unknown.is_ok(), "unknown fields and nulls cost nothing");
    }

    #[test]
    fn fallbacks_outside_the_plan_are_not_tried() {
        let some = plan(1, r#"["a","claude"]"#);
        let kept = gateway(&request(""), chain("a"), &some).unwrap();
        assert_eq!(names(&kept), ["a", "claude"]);
        assert_eq!(kept.completion_tokens, 300);
        let turn = chat(chain("a"), &some);
        assert_eq!(names(&turn), ["a", "claude"]);
        assert_eq!(turn.completion_tokens, 300);
        assert_eq!(chat(chain("a"), &plan(1, r#"["a"]"#)).completion_tokens, 100);
    }

    #[test]
    fn the_governed_fields_are_sorted_and_unique() {
        assert!(GOVERNED_FIELDS.windows(2).all(|w| w[0] < w[1]));
    }
}
