//! Reading an OSB request body strictly: `Content-Type: application/json` required, the whole
//! body within the body timeout and the size limit, and a JSON object without duplicate keys
//! (a key given twice is refused, not silently resolved to its last value).

use crate::error::BrokerError;
use actix_web::http::header;
use actix_web::{web, HttpRequest};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;
use std::time::Duration;

/// Refuses a body-carrying request whose `Content-Type` is not `application/json` (parameters
/// such as `charset` are allowed): 400, as the OSB specification asks for a mismatched
/// Content-Type.
pub fn check_content_type(req: &HttpRequest) -> Result<(), BrokerError> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Err(BrokerError::BadRequest(
            "Content-Type must be application/json; the request has no Content-Type header".into(),
        ));
    };
    let text = value.to_str().unwrap_or("(not text)");
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(BrokerError::BadRequest(format!(
            "Content-Type must be application/json, not {:?}",
            text.chars().take(100).collect::<String>()
        )))
    }
}

/// Reads the whole body, at most `limit` bytes, within `timeout`: 413 when larger, 408 (and the
/// connection closed) when the client is too slow to send it.
pub async fn read_body(
    payload: web::Payload,
    limit: usize,
    timeout: Duration,
) -> Result<web::Bytes, BrokerError> {
    match tokio::time::timeout(timeout, payload.to_bytes_limited(limit)).await {
        Err(_) => {
            tracing::info!(
                timeout_ms = timeout.as_millis() as u64,
                "request body not received in time; closing the connection"
            );
            Err(BrokerError::BodyTimeout(timeout))
        }
        Ok(Err(_)) => Err(BrokerError::PayloadTooLarge(limit)),
        Ok(Ok(Err(e))) => Err(BrokerError::BadRequest(format!(
            "the request body could not be read: {e}"
        ))),
        Ok(Ok(Ok(bytes))) => Ok(bytes),
    }
}

/// Parses JSON text into a value, refusing an object that holds the same key twice (at any
/// depth). The error names the key and where it is.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let Strict(value) = Strict::deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// A JSON value decoded without accepting duplicate keys.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key {:?}: a key may appear only once in an object",
                    key.chars().take(100).collect::<String>()
                )));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_key_at_any_depth_is_refused_naming_the_key() {
        let e = parse_strict(br#"{"plan_id":"a","plan_id":"b"}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate key \"plan_id\""), "{e}");
        let e = parse_strict(br#"{"parameters":{"x":1,"y":[{"z":1,"z":2}]}}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate key \"z\""), "{e}");
    }

    #[test]
    fn the_same_values_as_serde_json_come_out_otherwise() {
        let text = br#"{"a":[1,-2,3.5,true,null,"s",{"b":{}}],"c":"\u00e9"}"#;
        assert_eq!(
            parse_strict(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
        assert!(parse_strict(br#"{"a":1} x"#).is_err(), "trailing data");
        assert!(parse_strict(b"{").is_err());
    }
}
