//! AdminService's user calls: SCRAM credentials in, salted hashes stored, names and
//! mechanisms out (never a key).

use rill_common::scram::{ScramCredential, ScramMechanism};
use rill_common::ErrorCode;
use rill_metadata::ControllerRequest;
use rill_proto::v1 as pb;
use tonic::Status;

use super::admin_service::AdminServiceImpl;

impl AdminServiceImpl {
    pub(super) async fn create_user(&self, request: pb::CreateUserRequest) -> Result<(), Status> {
        let credentials = request
            .credentials
            .into_iter()
            .map(|c| {
                let mechanism = ScramMechanism::from_name(&c.mechanism).ok_or_else(|| {
                    rill_proto::error_status(
                        ErrorCode::UnsupportedSaslMechanism,
                        &format!("{:?} is not SCRAM-SHA-256 or SCRAM-SHA-512", c.mechanism),
                    )
                })?;
                ScramCredential::from_salted_password(
                    mechanism,
                    &c.salted_password,
                    c.salt.to_vec(),
                    c.iterations,
                )
                .map_err(|e| rill_proto::error_status(ErrorCode::InvalidRequest, &e.to_string()))
            })
            .collect::<Result<Vec<_>, Status>>()?;
        self.submit(ControllerRequest::PutUser {
            name: request.name,
            credentials,
        })
        .await
    }

    pub(super) async fn delete_user(&self, request: pb::DeleteUserRequest) -> Result<(), Status> {
        self.submit(ControllerRequest::DeleteUser { name: request.name })
            .await
    }

    pub(super) fn list_users(&self) -> Vec<pb::UserInfo> {
        self.metadata
            .state()
            .users
            .iter()
            .map(|(name, credentials)| pb::UserInfo {
                name: name.clone(),
                mechanisms: credentials
                    .iter()
                    .map(|c| pb::UserMechanism {
                        mechanism: c.mechanism.name().to_string(),
                        iterations: c.iterations,
                    })
                    .collect(),
            })
            .collect()
    }
}
