use super::*;

fn acl(
    principal: &str,
    resource_type: ResourceType,
    name: &str,
    pattern_type: PatternType,
    operation: Operation,
    permission: Permission,
) -> AclBinding {
    AclBinding {
        principal: principal.into(),
        resource_type,
        resource_name: name.into(),
        pattern_type,
        operation,
        permission,
    }
}

use Operation::*;
use PatternType::*;
use Permission::*;
use ResourceType::*;

#[test]
fn a_prefixed_write_covers_its_topics_and_no_others() {
    let acls = std::collections::BTreeSet::from([acl(
        "User:alice",
        Topic,
        "orders-",
        Prefixed,
        Write,
        Allow,
    )]);
    let auth = Authorizer {
        acls: &acls,
        super_users: &[],
    };
    assert!(auth.allows("User:alice", Write, Topic, "orders-eu"));
    assert!(
        auth.allows("User:alice", Describe, Topic, "orders-eu"),
        "implied"
    );
    assert!(!auth.allows("User:alice", Write, Topic, "payments"));
    assert!(!auth.allows("User:alice", Read, Topic, "orders-eu"));
    assert!(!auth.allows("User:bob", Write, Topic, "orders-eu"));
    assert!(!auth.allows("User:alice", Write, Group, "orders-eu"));
}

#[test]
fn a_literal_names_one_resource_and_star_names_them_all() {
    let acls = std::collections::BTreeSet::from([
        acl("User:alice", Group, "billing", Literal, Read, Allow),
        acl("User:*", Topic, "*", Literal, Describe, Allow),
    ]);
    let auth = Authorizer {
        acls: &acls,
        super_users: &[],
    };
    assert!(auth.allows("User:alice", Read, Group, "billing"));
    assert!(!auth.allows("User:alice", Read, Group, "billing-2"));
    assert!(auth.allows("User:anyone", Describe, Topic, "whatever"));
    assert!(!auth.allows("User:anyone", Read, Topic, "whatever"));
}

#[test]
fn a_deny_beats_any_allow() {
    let acls = std::collections::BTreeSet::from([
        acl("User:alice", Topic, "*", Literal, All, Allow),
        acl("User:alice", Topic, "secret-", Prefixed, Read, Deny),
    ]);
    let auth = Authorizer {
        acls: &acls,
        super_users: &[],
    };
    assert!(auth.allows("User:alice", Read, Topic, "public"));
    assert!(!auth.allows("User:alice", Read, Topic, "secret-plans"));
    assert!(auth.allows("User:alice", Write, Topic, "secret-plans"));
    // A denied READ does not deny DESCRIBE: implication works for allows only.
    assert!(auth.allows("User:alice", Describe, Topic, "secret-plans"));
}

#[test]
fn without_a_matching_allow_the_answer_is_no_and_super_users_are_never_asked() {
    let acls = std::collections::BTreeSet::from([acl(
        "User:admin",
        Cluster,
        "kafka-cluster",
        Literal,
        Alter,
        Deny,
    )]);
    let supers = ["User:admin".to_string()];
    let auth = Authorizer {
        acls: &acls,
        super_users: &supers,
    };
    assert!(!auth.allows("User:alice", Read, Topic, "t"));
    assert!(auth.allows("User:admin", Alter, Cluster, "kafka-cluster"));
}

#[test]
fn alter_configs_implies_describe_configs() {
    let acls = std::collections::BTreeSet::from([acl(
        "User:ops",
        Topic,
        "t",
        Literal,
        AlterConfigs,
        Allow,
    )]);
    let auth = Authorizer {
        acls: &acls,
        super_users: &[],
    };
    assert!(auth.allows("User:ops", DescribeConfigs, Topic, "t"));
    assert!(!auth.allows("User:ops", Describe, Topic, "t"));
}

#[test]
fn filters_match_on_every_field_they_name() {
    let a = acl("User:alice", Topic, "orders-", Prefixed, Write, Allow);
    assert!(AclFilter::default().matches(&a));
    let by_principal = AclFilter {
        principal: Some("User:alice".into()),
        ..Default::default()
    };
    assert!(by_principal.matches(&a));
    let other_pattern = AclFilter {
        pattern_type: Some(Literal),
        ..by_principal
    };
    assert!(!other_pattern.matches(&a));
}

#[test]
fn operation_names_are_kafkas() {
    assert_eq!(
        Operation::from_name("describe-configs"),
        Some(DescribeConfigs)
    );
    assert_eq!(Operation::from_name("WRITE"), Some(Write));
    assert_eq!(Operation::from_name("fly"), None);
}
