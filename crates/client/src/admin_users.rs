//! The admin client's user calls. A password is salted and hashed here
//! (`Hi(password, salt, i)`): it never leaves the client.

use rill_common::scram::ScramMechanism;
use rill_proto::v1 as pb;
use rill_proto::v1::admin_service_client::AdminServiceClient;
use serde::{Deserialize, Serialize};

use crate::{AdminClient, ClientError};

/// The iteration count new credentials get (Kafka's default and minimum).
pub const SCRAM_ITERATIONS: u32 = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserListing {
    pub name: String,
    pub mechanisms: Vec<UserMechanism>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMechanism {
    pub mechanism: String,
    pub iterations: u32,
}

impl AdminClient {
    /// Creates `name` (or replaces its credentials of `mechanisms`) with `password`.
    pub async fn create_user(
        &self,
        name: &str,
        password: &str,
        mechanisms: &[ScramMechanism],
    ) -> Result<(), ClientError> {
        let credentials = mechanisms
            .iter()
            .map(|mechanism| {
                let salt: [u8; 16] = rand::random();
                pb::ScramCredentialInput {
                    mechanism: mechanism.name().to_string(),
                    salted_password: mechanism
                        .salted_password(password.as_bytes(), &salt, SCRAM_ITERATIONS)
                        .into(),
                    salt: salt.to_vec().into(),
                    iterations: SCRAM_ITERATIONS,
                }
            })
            .collect();
        let request = pb::CreateUserRequest {
            name: name.to_string(),
            credentials,
        };
        self.bootstrap()
            .with_channel(|c| {
                let request = request.clone();
                async move { AdminServiceClient::new(c).create_user(request).await }
            })
            .await?;
        Ok(())
    }

    pub async fn delete_user(&self, name: &str) -> Result<(), ClientError> {
        let request = pb::DeleteUserRequest {
            name: name.to_string(),
        };
        self.bootstrap()
            .with_channel(|c| {
                let request = request.clone();
                async move { AdminServiceClient::new(c).delete_user(request).await }
            })
            .await?;
        Ok(())
    }

    pub async fn list_users(&self) -> Result<Vec<UserListing>, ClientError> {
        let response = self
            .bootstrap()
            .with_channel(|c| async move {
                AdminServiceClient::new(c)
                    .list_users(pb::ListUsersRequest {})
                    .await
            })
            .await?;
        Ok(response
            .into_inner()
            .users
            .into_iter()
            .map(|u| UserListing {
                name: u.name,
                mechanisms: u
                    .mechanisms
                    .into_iter()
                    .map(|m| UserMechanism {
                        mechanism: m.mechanism,
                        iterations: m.iterations,
                    })
                    .collect(),
            })
            .collect())
    }
}
