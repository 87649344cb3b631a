//! Service binding endpoints: bind, fetch, unbind, last_operation.

use super::edge::{path_param, read_json, OsbQuery};
use super::instances::{last_operation_flow, last_operation_response};
use crate::error::BrokerError;
use crate::service::{BindOutcome, Broker, RequestContext, UnbindOutcome};
use crate::webhooks::event::take_tracing_id;
use actix_web::{web, HttpRequest, HttpResponse};
use common::osb::{AsyncBindResponse, AsyncOperationResponse, BindRequest};

const INSTANCE_ID: &str = "instance_id";
const BINDING_ID: &str = "binding_id";

/// `PUT /v2/service_instances/{instance_id}/service_bindings/{binding_id}`.
pub async fn bind(
    broker: web::Data<Broker>,
    mut ctx: RequestContext,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, BrokerError> {
    let instance_id = path_param(&req, INSTANCE_ID)?;
    let binding_id = path_param(&req, BINDING_ID)?;
    let query = OsbQuery::parse_mutating(&req)?;
    let mut body: BindRequest = read_json(&req, payload).await?;
    ctx.tracing_id = take_tracing_id(&mut body.parameters);
    Ok(
        match broker
            .bind(
                &ctx,
                &instance_id,
                &binding_id,
                body,
                query.accepts_incomplete(),
            )
            .await?
        {
            BindOutcome::Created(binding) => HttpResponse::Created().json(binding),
            BindOutcome::Existing(binding) => HttpResponse::Ok().json(binding),
            BindOutcome::Accepted { operation } => {
                HttpResponse::Accepted().json(AsyncBindResponse {
                    operation: Some(operation.into()),
                })
            }
        },
    )
}

/// `GET /v2/service_instances/{instance_id}/service_bindings/{binding_id}`.
pub async fn fetch(
    broker: web::Data<Broker>,
    req: HttpRequest,
) -> Result<HttpResponse, BrokerError> {
    let instance_id = path_param(&req, INSTANCE_ID)?;
    let binding_id = path_param(&req, BINDING_ID)?;
    OsbQuery::parse(&req)?;
    Ok(HttpResponse::Ok().json(broker.fetch_binding(&instance_id, &binding_id).await?))
}

/// `DELETE /v2/service_instances/{instance_id}/service_bindings/{binding_id}`.
pub async fn unbind(
    broker: web::Data<Broker>,
    ctx: RequestContext,
    req: HttpRequest,
) -> Result<HttpResponse, BrokerError> {
    let instance_id = path_param(&req, INSTANCE_ID)?;
    let binding_id = path_param(&req, BINDING_ID)?;
    let query = OsbQuery::parse_mutating(&req)?;
    let accepts_incomplete = query.accepts_incomplete();
    Ok(
        match broker
            .unbind(
                &ctx,
                &instance_id,
                &binding_id,
                query.service_id,
                query.plan_id,
                accepts_incomplete,
            )
            .await?
        {
            UnbindOutcome::Deleted => HttpResponse::Ok().json(AsyncOperationResponse::default()),
            UnbindOutcome::Accepted { operation } => {
                HttpResponse::Accepted().json(AsyncOperationResponse {
                    operation: Some(operation.into()),
                })
            }
        },
    )
}

/// `GET /v2/service_instances/{instance_id}/service_bindings/{binding_id}/last_operation`.
pub async fn last_operation(
    broker: web::Data<Broker>,
    req: HttpRequest,
) -> Result<HttpResponse, BrokerError> {
    let instance_id = path_param(&req, INSTANCE_ID)?;
    let binding_id = path_param(&req, BINDING_ID)?;
    let query = OsbQuery::parse(&req)?;
    let flow = last_operation_flow(&broker, &req, &instance_id, Some(&binding_id), &query).await?;
    let answer = broker.binding_last_operation(&instance_id, &binding_id, query.operation());
    let body = broker.observed_last_operation(flow, answer).await?;
    Ok(last_operation_response(&broker, body))
}
