//! AdminService's ACL calls: bindings checked by the controller and written to the
//! metadata log, where both protocols' authorizer reads them without a restart.

use rill_common::acl::AclFilter;
use rill_common::ErrorCode;
use rill_metadata::ControllerRequest;
use rill_proto::acl::{acl_from_pb, acl_to_pb};
use rill_proto::v1 as pb;
use tonic::Status;

use super::admin_service::AdminServiceImpl;

fn bindings(list: Vec<pb::AclBinding>) -> Result<Vec<rill_common::acl::AclBinding>, Status> {
    list.into_iter()
        .map(|b| {
            acl_from_pb(b).map_err(|e| rill_proto::error_status(ErrorCode::InvalidRequest, &e))
        })
        .collect()
}

impl AdminServiceImpl {
    pub(super) async fn create_acls(&self, request: pb::CreateAclsRequest) -> Result<(), Status> {
        let bindings = bindings(request.bindings)?;
        self.submit(ControllerRequest::CreateAcls { bindings })
            .await
    }

    /// Deletes exactly the bindings named; how many of them existed.
    pub(super) async fn delete_acls(&self, request: pb::DeleteAclsRequest) -> Result<u64, Status> {
        let filters: Vec<AclFilter> = bindings(request.bindings)?
            .into_iter()
            .map(|b| AclFilter {
                principal: Some(b.principal),
                resource_type: Some(b.resource_type),
                resource_name: Some(b.resource_name),
                pattern_type: Some(b.pattern_type),
                operation: Some(b.operation),
                permission: Some(b.permission),
            })
            .collect();
        let state = self.metadata.state();
        let existing = state
            .acls
            .iter()
            .filter(|a| filters.iter().any(|f| f.matches(a)))
            .count();
        self.submit(ControllerRequest::DeleteAcls { filters })
            .await?;
        Ok(existing as u64)
    }

    pub(super) fn list_acls(&self) -> Vec<pb::AclBinding> {
        self.metadata.state().acls.iter().map(acl_to_pb).collect()
    }
}
