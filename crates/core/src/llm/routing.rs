//! Model routing: the `MODEL_ROUTES` config (public model names mapped to a provider, an
//! upstream model id, limits, the cost-changing fields it lets through, and fallbacks),
//! validated once, then resolved per request.
//!
//! ```json
//! {"default": "sim-small",
//!  "models": {"sim-small": {"provider": "openai", "upstream": "sim-small", "context_tokens": 8192,
//!                           "allow_fields": ["service_tier"], "fallbacks": ["claude"]},
//!             "claude": {"provider": "anthropic", "upstream": "claude-3-5-haiku-latest",
//!                        "context_tokens": 200000, "capabilities": {"json_mode": false}},
//!             "embed": {"provider": "openai", "upstream": "text-embedding-3-small", "kind": "embedding"}}}
//! ```

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::provider::Provider;
use crate::admission::GOVERNED_FIELDS;

/// Context window assumed when a model does not set `context_tokens`.
pub const DEFAULT_CONTEXT_TOKENS: u32 = 8192;
/// Answer length assumed when a model does not set `max_output_tokens`.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 1024;

/// One public model name and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRoute {
    /// The name clients ask for.
    pub name: String,
    pub provider: Provider,
    /// The provider's model id (defaults to `name`).
    pub upstream: String,
    pub context_tokens: u32,
    pub max_output_tokens: u32,
    /// The cost-changing request fields ([`GOVERNED_FIELDS`]) this model lets through.
    pub allow_fields: Vec<String>,
    /// Models to try, in order, when this one fails.
    pub fallbacks: Vec<String>,
    /// What the gateway lets a request use on this model.
    pub capabilities: Capabilities,
    pub kind: Kind,
}

/// What a model is for: answering chats (the default), or only `POST /v1/embeddings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Chat,
    Embedding,
}

/// What a model can be asked for through the gateway: `tools` (function calling), `json_mode`
/// (`response_format` `json_object`/`json_schema`) and `vision` (image parts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub tools: bool,
    pub json_mode: bool,
    pub vision: bool,
}

impl Capabilities {
    /// What the gateway can do on `provider`: OpenAI-compatible upstreams get the request as
    /// it is; Anthropic gets tools and JSON mode translated (image parts are not translated);
    /// Workers AI gets text only.
    pub fn of(provider: Provider) -> Self {
        match provider {
            Provider::OpenAi => Capabilities { tools: true, json_mode: true, vision: true },
            Provider::Anthropic => Capabilities { tools: true, json_mode: true, vision: false },
            Provider::WorkersAi => Capabilities { tools: false, json_mode: false, vision: false },
        }
    }
}

/// `capabilities` as written in `MODEL_ROUTES`: each member overrides the provider's default,
/// but only to turn a capability off (an upstream model that cannot do what its API can).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCapabilities {
    tools: Option<bool>,
    json_mode: Option<bool>,
    vision: Option<bool>,
}

impl ModelRoute {
    /// Whether a request may send the cost-changing field `name` to this model.
    pub fn allows_field(&self, name: &str) -> bool {
        self.allow_fields.iter().any(|f| f == name)
    }
}

/// The validated routing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    default: String,
    /// In configuration order, names unique (they were a JSON object's).
    models: Vec<ModelRoute>,
}

/// `MODEL_ROUTES` as written, before its cross-references are checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoutes {
    default: String,
    models: Ordered<RawRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    provider: String,
    upstream: Option<String>,
    context_tokens: Option<u32>,
    max_output_tokens: Option<u32>,
    #[serde(default)]
    allow_fields: Vec<String>,
    #[serde(default)]
    fallbacks: Vec<String>,
    capabilities: Option<RawCapabilities>,
    #[serde(default)]
    kind: Kind,
}

/// A JSON object's members in configuration order (a serde map would sort them); a name
/// given twice keeps its first place and its last value.
struct Ordered<T>(Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for Members<T> {
            type Value = Ordered<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of models")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members: Vec<(String, T)> = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, T>()? {
                    match members.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, old)) => *old = value,
                        None => members.push((name, value)),
                    }
                }
                Ok(Ordered(members))
            }
        }

        deserializer.deserialize_map(Members(PhantomData))
    }
}

impl Routes {
    /// Parses and checks `MODEL_ROUTES`; the error names the problem (bad JSON, an unknown
    /// provider or field, a default or fallback that is not a model, a model that lists
    /// itself, no models, a zero limit). Fallback cycles are allowed: [`Routes::chain`] does
    /// not follow fallbacks of fallbacks.
    pub fn parse(json: &str) -> Result<Routes, String> {
        let raw = read_raw(json)?;
        if raw.models.0.is_empty() {
            return Err("MODEL_ROUTES lists no models".into());
        }
        let models =
            raw.models.0.into_iter().map(|(name, route)| check_route(name, route)).collect::<Result<Vec<_>, _>>()?;
        let routes = Routes { default: raw.default, models };
        for route in &routes.models {
            if let Some(unknown) = route.fallbacks.iter().find(|f| routes.get(f).is_none()) {
                return Err(format!(
                    "MODEL_ROUTES model \"{}\" has fallback \"{unknown}\", which is not a model",
                    route.name
                ));
            }
        }
        match routes.get(&routes.default) {
            None => Err(format!(
                "MODEL_ROUTES default \"{}\" is not one of the models ({})",
                routes.default,
                routes.names().join(", ")
            )),
            Some(route) if route.kind != Kind::Chat => {
                Err(format!("MODEL_ROUTES default \"{}\" is an embedding model, not a chat model", routes.default))
            }
            Some(_) => Ok(routes),
        }
    }

    fn get(&self, name: &str) -> Option<&ModelRoute> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The model used when a request names none.
    pub fn default_model(&self) -> &str {
        &self.default
    }

    /// Every model name, in configuration order.
    pub fn names(&self) -> Vec<&str> {
        self.models.iter().map(|m| m.name.as_str()).collect()
    }

    /// The route for `requested`, or the default's for `None`.
    pub fn resolve(&self, requested: Option<&str>) -> Result<&ModelRoute, String> {
        let name = requested.unwrap_or(&self.default);
        self.get(name).ok_or_else(|| {
            // The name comes from a client: keep the message short.
            let shown: String = name.chars().take(100).collect();
            format!("unknown model \"{shown}\"; valid models: {}", self.names().join(", "))
        })
    }

    /// A chat model's route: [`Routes::resolve`], refusing an embedding model.
    pub fn resolve_chat(&self, requested: Option<&str>) -> Result<&ModelRoute, String> {
        let route = self.resolve(requested)?;
        match route.kind {
            Kind::Chat => Ok(route),
            Kind::Embedding => Err(embedding_only(&route.name)),
        }
    }

    /// `name`'s route followed by its fallbacks of the same kind in order, each at most once;
    /// names that are not models are skipped (an unknown `name` gives an empty chain).
    pub fn chain(&self, name: &str) -> Vec<&ModelRoute> {
        let Some(first) = self.get(name) else {
            return Vec::new();
        };
        let mut chain = vec![first];
        for fallback in &first.fallbacks {
            if let Some(route) = self.get(fallback).filter(|r| r.kind == first.kind) {
                if !chain.iter().any(|r| r.name == route.name) {
                    chain.push(route);
                }
            }
        }
        chain
    }
}

/// `MODEL_ROUTES` read through its derives; the error tells bad JSON from a wrong shape and
/// names where the shape is wrong (`models.a`).
fn read_raw(json: &str) -> Result<RawRoutes, String> {
    let syntax = |e: &serde_json::Error| format!("MODEL_ROUTES is not valid JSON: {e}");
    let mut de = serde_json::Deserializer::from_slice(json.as_bytes());
    let raw: RawRoutes = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let (path, inner) = (e.path().to_string(), e.inner());
        if inner.is_syntax() || inner.is_eof() {
            syntax(inner)
        } else if path == "." {
            format!("MODEL_ROUTES has the wrong shape: {inner}")
        } else {
            format!("MODEL_ROUTES has the wrong shape at {path}: {inner}")
        }
    })?;
    de.end().map_err(|e| syntax(&e))?;
    Ok(raw)
}

/// Why a chat cannot use the embedding model `name`.
pub fn embedding_only(name: &str) -> String {
    let shown: String = name.chars().take(100).collect();
    format!("model \"{shown}\" is an embedding model: it serves POST /v1/embeddings only")
}

fn check_route(name: String, raw: RawRoute) -> Result<ModelRoute, String> {
    let problem = |what: String| format!("MODEL_ROUTES model \"{name}\": {what}");
    if name.trim().is_empty() {
        return Err("MODEL_ROUTES has a model with an empty name".into());
    }
    let provider = Provider::parse(&raw.provider).ok_or_else(|| {
        problem(format!("unknown provider \"{}\" (expected openai, anthropic or workers-ai)", raw.provider))
    })?;
    let context_tokens = raw.context_tokens.unwrap_or(DEFAULT_CONTEXT_TOKENS);
    let max_output_tokens = raw.max_output_tokens.unwrap_or(DEFAULT_MAX_OUTPUT_TOKENS);
    if context_tokens == 0 || max_output_tokens == 0 {
        return Err(problem("context_tokens and max_output_tokens must be positive".into()));
    }
    if raw.fallbacks.contains(&name) {
        return Err(problem("lists itself as a fallback".into()));
    }
    if let Some(unknown) = raw.allow_fields.iter().find(|f| !GOVERNED_FIELDS.contains(&f.as_str())) {
        return Err(problem(format!(
            "allow_fields lists \"{unknown}\", which is not a cost-changing field (expected any of {})",
            GOVERNED_FIELDS.join(", ")
        )));
    }
    let upstream = raw.upstream.filter(|u| !u.is_empty()).unwrap_or_else(|| name.clone());
    let allow_fields = raw.allow_fields;
    // An embedding model answers no chat: none of a chat's features apply.
    let most = match raw.kind {
        Kind::Chat => Capabilities::of(provider),
        Kind::Embedding => Capabilities { tools: false, json_mode: false, vision: false },
    };
    if raw.kind == Kind::Embedding && provider != Provider::OpenAi {
        return Err(problem("kind embedding needs provider openai (the gateway serves embeddings from OpenAI-compatible upstreams only)".into()));
    }
    let asked = raw.capabilities.unwrap_or_default();
    let mut capabilities = most;
    for (field, can, set, slot) in [
        ("tools", most.tools, asked.tools, &mut capabilities.tools),
        ("json_mode", most.json_mode, asked.json_mode, &mut capabilities.json_mode),
        ("vision", most.vision, asked.vision, &mut capabilities.vision),
    ] {
        match set {
            Some(true) if !can => {
                return Err(problem(format!(
                    "capabilities.{field} cannot be true: the gateway does not support it for provider {}",
                    provider.as_str()
                )))
            }
            Some(on) => *slot = on,
            None => {}
        }
    }
    Ok(ModelRoute {
        name,
        provider,
        upstream,
        context_tokens,
        max_output_tokens,
        allow_fields,
        fallbacks: raw.fallbacks,
        capabilities,
        kind: raw.kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"default":"sim-small","models":{
        "sim-small":{"provider":"openai","upstream":"sim-small","context_tokens":8192,"fallbacks":["sim-backup","claude","sim-backup"],
                     "allow_fields":["service_tier","store"]},
        "sim-backup":{"provider":"openai","fallbacks":["sim-small"]},
        "claude":{"provider":"anthropic","upstream":"claude-3-5-haiku-latest","context_tokens":200000,"max_output_tokens":4096},
        "llama":{"provider":"workers-ai","upstream":"@cf/meta/llama-3.1-8b-instruct"}}}"#;

    fn routes() -> Routes {
        Routes::parse(EXAMPLE).unwrap()
    }

    fn parse_err(json: &str) -> String {
        Routes::parse(json).unwrap_err()
    }

    #[test]
    fn an_embedding_model_serves_no_chat_and_falls_back_only_to_its_kind() {
        let json = r#"{"default":"chat","models":{
            "chat":{"provider":"openai","fallbacks":["embed","other"]},
            "other":{"provider":"openai"},
            "embed":{"provider":"openai","kind":"embedding","fallbacks":["chat","embed2"]},
            "embed2":{"provider":"openai","kind":"embedding"}}}"#;
        let routes = Routes::parse(json).unwrap();
        let embed = routes.resolve(Some("embed")).unwrap();
        assert_eq!(embed.kind, Kind::Embedding);
        assert_eq!(embed.capabilities, Capabilities { tools: false, json_mode: false, vision: false });
        assert_eq!(routes.resolve_chat(Some("chat")).unwrap().name, "chat");
        assert_eq!(
            routes.resolve_chat(Some("embed")).unwrap_err(),
            "model \"embed\" is an embedding model: it serves POST /v1/embeddings only"
        );
        let names = |name: &str| routes.chain(name).into_iter().map(|r| r.name.as_str()).collect::<Vec<_>>();
        assert_eq!(names("chat"), ["chat", "other"]);
        assert_eq!(names("embed"), ["embed", "embed2"]);
        let default_embed = r#"{"default":"e","models":{"e":{"provider":"openai","kind":"embedding"}}}"#;
        assert!(Routes::parse(default_embed).unwrap_err().contains("is an embedding model"));
        let anthropic =
            r#"{"default":"c","models":{"c":{"provider":"openai"},"e":{"provider":"anthropic","kind":"embedding"}}}"#;
        assert!(Routes::parse(anthropic).unwrap_err().contains("kind embedding needs provider openai"));
        assert!(Routes::parse(r#"{"default":"c","models":{"c":{"provider":"openai","kind":"audio"}}}"#).is_err());
    }

    #[test]
    fn a_valid_config_parses_with_defaults_filled_in() {
        let routes = routes();
        assert_eq!(routes.default_model(), "sim-small");
        assert_eq!(routes.names(), ["sim-small", "sim-backup", "claude", "llama"]);
        let backup = routes.resolve(Some("sim-backup")).unwrap();
        assert_eq!(
            backup,
            &ModelRoute {
                name: "sim-backup".into(),
                provider: Provider::OpenAi,
                upstream: "sim-backup".into(),
                context_tokens: 8192,
                max_output_tokens: 1024,
                allow_fields: vec![],
                fallbacks: vec!["sim-small".into()],
                capabilities: Capabilities { tools: true, json_mode: true, vision: true },
                kind: Kind::Chat,
            }
        );
        let claude = routes.resolve(Some("claude")).unwrap();
        assert_eq!(
            (claude.provider, claude.upstream.as_str(), claude.context_tokens, claude.max_output_tokens),
            (Provider::Anthropic, "claude-3-5-haiku-latest", 200_000, 4096)
        );
    }

    #[test]
    fn capabilities_come_from_the_provider_and_may_only_be_turned_off() {
        let routes = routes();
        let caps = |name: &str| routes.resolve(Some(name)).unwrap().capabilities;
        assert_eq!(caps("claude"), Capabilities { tools: true, json_mode: true, vision: false });
        assert_eq!(caps("llama"), Capabilities { tools: false, json_mode: false, vision: false });
        let off =
            r#"{"default":"a","models":{"a":{"provider":"openai","capabilities":{"tools":false,"vision":false}}}}"#;
        let a = Routes::parse(off).unwrap().resolve(None).unwrap().capabilities;
        assert_eq!(a, Capabilities { tools: false, json_mode: true, vision: false });
        let on = r#"{"default":"a","models":{"a":{"provider":"workers-ai","capabilities":{"tools":true}}}}"#;
        assert_eq!(
            parse_err(on),
            "MODEL_ROUTES model \"a\": capabilities.tools cannot be true: the gateway does not support it for provider workers-ai"
        );
        let unknown = r#"{"default":"a","models":{"a":{"provider":"openai","capabilities":{"audio":true}}}}"#;
        assert!(parse_err(unknown).contains("unknown field `audio`"), "{}", parse_err(unknown));
    }

    #[test]
    fn cost_changing_fields_pass_only_where_a_model_allows_them() {
        let routes = routes();
        let small = routes.resolve(Some("sim-small")).unwrap();
        assert!(small.allows_field("service_tier") && small.allows_field("store"));
        assert!(!small.allows_field("audio"));
        assert!(!routes.resolve(Some("sim-backup")).unwrap().allows_field("service_tier"), "none by default");
    }

    #[test]
    fn no_requested_model_means_the_default() {
        assert_eq!(routes().resolve(None).unwrap().name, "sim-small");
    }

    #[test]
    fn an_unknown_model_lists_the_valid_ones() {
        assert_eq!(
            routes().resolve(Some("gpt-5")).unwrap_err(),
            "unknown model \"gpt-5\"; valid models: sim-small, sim-backup, claude, llama"
        );
    }

    #[test]
    fn a_chain_is_the_model_then_its_fallbacks_each_once() {
        let routes = routes();
        let names = |name| routes.chain(name).iter().map(|r| r.name.as_str()).collect::<Vec<_>>();
        assert_eq!(names("sim-small"), ["sim-small", "sim-backup", "claude"]);
        // A cycle is fine: fallbacks of fallbacks are not followed.
        assert_eq!(names("sim-backup"), ["sim-backup", "sim-small"]);
        assert_eq!(names("claude"), ["claude"]);
        assert!(names("nope").is_empty());
    }

    #[test]
    fn bad_json_and_wrong_shapes_are_named() {
        assert!(parse_err("{").starts_with("MODEL_ROUTES is not valid JSON"));
        assert!(parse_err(r#"{"models":{}}"#).contains("missing field `default`"));
        let typo = parse_err(r#"{"default":"a","models":{"a":{"provider":"openai","context_token":5}}}"#);
        assert!(typo.contains("unknown field `context_token`"), "{typo}");
    }

    #[test]
    fn allow_fields_must_be_a_list_of_names() {
        let text = parse_err(r#"{"default":"a","models":{"a":{"provider":"openai","allow_fields":"store"}}}"#);
        assert!(text.starts_with("MODEL_ROUTES has the wrong shape at models.a.allow_fields: "), "{text}");
        let number = parse_err(r#"{"default":"a","models":{"a":{"provider":"openai","allow_fields":[1]}}}"#);
        assert!(number.starts_with("MODEL_ROUTES has the wrong shape at models.a.allow_fields[0]: "), "{number}");
    }

    #[test]
    fn shape_errors_name_where_in_the_config() {
        let negative = parse_err(r#"{"default":"a","models":{"a":{"provider":"openai","context_tokens":-5}}}"#);
        assert!(negative.starts_with("MODEL_ROUTES has the wrong shape at models.a.context_tokens: "), "{negative}");
        let list = parse_err(r#"{"default":"a","models":[]}"#);
        assert!(list.starts_with("MODEL_ROUTES has the wrong shape at models: "), "{list}");
        assert!(parse_err(r#"{"default":"a","models":{"a":{"provider":"openai"}}} x"#)
            .starts_with("MODEL_ROUTES is not valid JSON"));
    }

    #[test]
    fn a_model_named_twice_keeps_its_first_place_and_last_value() {
        let routes = Routes::parse(
            r#"{"default":"a","models":{"a":{"provider":"openai"},"b":{"provider":"openai"},"a":{"provider":"anthropic"}}}"#,
        )
        .unwrap();
        assert_eq!(routes.names(), ["a", "b"]);
        assert_eq!(routes.resolve(Some("a")).unwrap().provider, Provider::Anthropic);
    }

    #[test]
    fn config_mistakes_are_named() {
        let cases = [
            (r#"{"default":"a","models":{}}"#, "MODEL_ROUTES lists no models"),
            (
                r#"{"default":"a","models":{"a":{"provider":"gemini"}}}"#,
                "MODEL_ROUTES model \"a\": unknown provider \"gemini\" (expected openai, anthropic or workers-ai)",
            ),
            (
                r#"{"default":"b","models":{"a":{"provider":"openai"}}}"#,
                "MODEL_ROUTES default \"b\" is not one of the models (a)",
            ),
            (
                r#"{"default":"a","models":{"a":{"provider":"openai","fallbacks":["z"]}}}"#,
                "MODEL_ROUTES model \"a\" has fallback \"z\", which is not a model",
            ),
            (
                r#"{"default":"a","models":{"a":{"provider":"openai","fallbacks":["a"]}}}"#,
                "MODEL_ROUTES model \"a\": lists itself as a fallback",
            ),
            (
                r#"{"default":"a","models":{"a":{"provider":"openai","context_tokens":0}}}"#,
                "MODEL_ROUTES model \"a\": context_tokens and max_output_tokens must be positive",
            ),
            (r#"{"default":"","models":{"":{"provider":"openai"}}}"#, "MODEL_ROUTES has a model with an empty name"),
            (
                r#"{"default":"a","models":{"a":{"provider":"openai","allow_fields":["service_tier","temperature"]}}}"#,
                "MODEL_ROUTES model \"a\": allow_fields lists \"temperature\", which is not a cost-changing field \
                 (expected any of audio, modalities, prediction, reasoning_effort, service_tier, store, verbosity, web_search_options)",
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(parse_err(json), expected, "{json}");
        }
    }
}
