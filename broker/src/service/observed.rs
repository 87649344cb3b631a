//! last_operation under the event flows: initialization flows before the answer is looked up
//! (one may refuse it), then completion flows with the answer or error flows with a 4xx/5xx.

use super::start::refused;
use super::{Broker, RequestContext};
use crate::error::BrokerError;
use crate::flows::{run_init_flows, FlowError, FlowKind, FlowRequest, FlowResponse};
use actix_web::ResponseError as _;
use common::osb::LastOperationResponse;
use std::future::Future;

impl Broker {
    /// Whether last_operation requests have flows (the route then reads the request context,
    /// which parses the originating identity).
    pub fn observes_last_operation(&self) -> bool {
        let registry = self.flows.registry();
        registry.has_init(FlowKind::LastOperation)
            || registry.observes_end_of(FlowKind::LastOperation)
    }

    /// The view last_operation flows get of a request on `instance_id` (and `binding_id`) with
    /// the query's hints.
    pub fn last_operation_request(
        ctx: &RequestContext,
        instance_id: &str,
        binding_id: Option<&str>,
        (service_id, plan_id, operation): (Option<&str>, Option<&str>, Option<&str>),
    ) -> FlowRequest {
        let mut request = FlowRequest::new(FlowKind::LastOperation, ctx, instance_id, binding_id)
            .offering(service_id, plan_id);
        request.operation = operation.map(str::to_string);
        request
    }

    /// Answers with `answer` between the last_operation flows of `request` (none: just the
    /// answer). The flows never change the answer, except an initialization flow's refusal.
    pub async fn observed_last_operation(
        &self,
        request: Option<FlowRequest>,
        answer: impl Future<Output = Result<LastOperationResponse, BrokerError>>,
    ) -> Result<LastOperationResponse, BrokerError> {
        let Some(request) = request else {
            return answer.await;
        };
        let registry = self.flows.registry();
        run_init_flows(registry, &request).await.map_err(refused)?;
        let result = answer.await;
        match &result {
            Ok(body) => {
                let response = FlowResponse {
                    state: body.state,
                    description: body.description.clone(),
                };
                registry.completed(&request, &response).await;
            }
            Err(e) => {
                let error = FlowError {
                    status: Some(e.status_code().as_u16()),
                    description: e.body().description.unwrap_or_default(),
                };
                registry.failed(&request, &error).await;
            }
        }
        result
    }
}
