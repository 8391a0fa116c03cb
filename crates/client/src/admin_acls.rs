//! The admin client's ACL calls.

use rill_common::acl::AclBinding;
use rill_proto::acl::{acl_from_pb, acl_to_pb};
use rill_proto::v1 as pb;
use rill_proto::v1::admin_service_client::AdminServiceClient;

use crate::{AdminClient, ClientError};

impl AdminClient {
    pub async fn create_acls(&self, bindings: &[AclBinding]) -> Result<(), ClientError> {
        let request = pb::CreateAclsRequest {
            bindings: bindings.iter().map(acl_to_pb).collect(),
        };
        self.bootstrap()
            .with_channel(|c| {
                let request = request.clone();
                async move { AdminServiceClient::new(c).create_acls(request).await }
            })
            .await?;
        Ok(())
    }

    /// Deletes the bindings equal to these; returns how many existed.
    pub async fn delete_acls(&self, bindings: &[AclBinding]) -> Result<u64, ClientError> {
        let request = pb::DeleteAclsRequest {
            bindings: bindings.iter().map(acl_to_pb).collect(),
        };
        let response = self
            .bootstrap()
            .with_channel(|c| {
                let request = request.clone();
                async move { AdminServiceClient::new(c).delete_acls(request).await }
            })
            .await?;
        Ok(response.into_inner().deleted)
    }

    pub async fn list_acls(&self) -> Result<Vec<AclBinding>, ClientError> {
        let response = self
            .bootstrap()
            .with_channel(|c| async move {
                AdminServiceClient::new(c)
                    .list_acls(pb::ListAclsRequest {})
                    .await
            })
            .await?;
        response
            .into_inner()
            .bindings
            .into_iter()
            .map(|b| acl_from_pb(b).map_err(ClientError::InvalidArgument))
            .collect()
    }
}
