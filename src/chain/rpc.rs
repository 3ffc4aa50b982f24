//! STUB (replaced by the chain branch).
use std::time::Duration;
pub struct RpcClient;
impl RpcClient {
    pub fn new(_nodes: Vec<url::Url>, _timeout: Duration) -> Self {
        RpcClient
    }
}
#[async_trait::async_trait]
impl super::RpcCall for RpcClient {
    async fn call(
        &self,
        _method: &str,
        _params: serde_json::Value,
    ) -> Result<serde_json::Value, super::RpcError> {
        Err(super::RpcError::Unavailable("stub".into()))
    }
}
