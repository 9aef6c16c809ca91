use aws_sdk_s3::types::{
    AccessControlPolicy, BucketCannedAcl, Grant, Grantee, ObjectCannedAcl, ObjectOwnership, Owner, OwnershipControls,
    OwnershipControlsRule, Permission, Type,
};

use crate::common::*;

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

fn controls(o: ObjectOwnership) -> OwnershipControls {
    OwnershipControls::builder()
        .rules(OwnershipControlsRule::builder().object_ownership(o).build().expect("rule"))
        .build()
        .expect("controls")
}

/// (grantee id or group URI, permission) of each grant of an ACL answer.
fn grants(g: &[Grant]) -> Vec<(String, String)> {
    g.iter()
        .map(|g| {
            let who = g.grantee().expect("grantee");
            let name = who.id().or(who.uri()).expect("id or uri").to_owned();
            (name, g.permission().expect("permission").as_str().to_owned())
        })
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

async fn code<T, E: aws_sdk_s3::error::ProvideErrorMetadata>(r: Result<T, E>) -> String {
    match r {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.code().unwrap_or("?").to_owned(),
    }
}

/// Object ownership and ACLs: new buckets have ACLs disabled (every object the bucket
/// owner's, only owner-only ACLs accepted); a bucket that enables them takes canned ACLs and
/// grants on buckets and objects, which then let others read, write and see ACLs, within
/// what the public access block allows.
#[tokio::test]
async fn ownership_controls_and_acls() {
    let server = TestServer::start().await;
    let alice = server.client(ALICE, Style::Path);
    let bob = server.client(BOB, Style::VirtualHost);

    // ACLs disabled: the AWS default for new buckets.
    alice.create_bucket().bucket("plain").send().await.expect("bucket");
    let got = alice.get_bucket_ownership_controls().bucket("plain").send().await.expect("controls");
    let rule = &got.ownership_controls().expect("controls").rules()[0];
    assert_eq!(rule.object_ownership(), &ObjectOwnership::BucketOwnerEnforced);
    let acl = alice.get_bucket_acl().bucket("plain").send().await.expect("acl");
    assert_eq!(acl.owner().and_then(Owner::id), Some(ALICE.id));
    assert_eq!(grants(acl.grants()), vec![pair(ALICE.id, "FULL_CONTROL")]);
    let put = alice.put_object().bucket("plain").key("k").acl(ObjectCannedAcl::PublicRead).body(b"x".to_vec().into());
    assert_eq!(code(put.send().await).await, "AccessControlListNotSupported");
    let put = alice.put_object().bucket("plain").key("k").acl(ObjectCannedAcl::BucketOwnerFullControl);
    put.body(b"x".to_vec().into()).send().await.expect("owner-only ACL");
    let acl = alice.get_object_acl().bucket("plain").key("k").send().await.expect("object acl");
    assert_eq!(grants(acl.grants()), vec![pair(ALICE.id, "FULL_CONTROL")]);
    let put = alice.put_bucket_acl().bucket("plain").acl(BucketCannedAcl::PublicRead).send().await;
    assert_eq!(code(put).await, "AccessControlListNotSupported");
    alice.put_bucket_acl().bucket("plain").acl(BucketCannedAcl::Private).send().await.expect("private is no change");
    let put = alice.put_object_acl().bucket("plain").key("k").acl(ObjectCannedAcl::PublicRead).send().await;
    assert_eq!(code(put).await, "AccessControlListNotSupported");
    let create = alice.create_bucket().bucket("pubacl").acl(BucketCannedAcl::PublicRead).send().await;
    assert_eq!(code(create).await, "InvalidBucketAclWithObjectOwnership");

    // A bucket that takes ACLs; the public access block new buckets get still refuses public ones.
    let create = alice.create_bucket().bucket("acls").object_ownership(ObjectOwnership::ObjectWriter);
    let create = create.acl(BucketCannedAcl::PublicRead).send().await;
    assert_eq!(code(create).await, "InvalidBucketAclWithBlockPublicAccessError");
    alice.create_bucket().bucket("acls").object_ownership(ObjectOwnership::ObjectWriter).send().await.expect("bucket");
    let put = alice.put_object().bucket("acls").key("pub.txt").acl(ObjectCannedAcl::PublicRead);
    assert_eq!(code(put.body(b"public".to_vec().into()).send().await).await, "AccessDenied");
    alice.delete_public_access_block().bucket("acls").send().await.expect("lift the block");
    let put = alice.put_object().bucket("acls").key("pub.txt").acl(ObjectCannedAcl::PublicRead);
    put.body(b"public".to_vec().into()).send().await.expect("public object");
    alice.put_object().bucket("acls").key("private.txt").body(b"secret".to_vec().into()).send().await.expect("put");
    let anonymous = |target: &str| Raw::new("GET", &server.host("acls", Style::Path), target);
    let got = anonymous("/acls/pub.txt").send(server.addr).await;
    assert_eq!((got.status, got.body.as_slice()), (200, &b"public"[..]));
    anonymous("/acls/private.txt").send(server.addr).await.assert_error(403, "AccessDenied");
    anonymous("/acls").send(server.addr).await.assert_error(403, "AccessDenied");
    let acl = alice.get_object_acl().bucket("acls").key("pub.txt").send().await.expect("acl");
    assert_eq!(grants(acl.grants()), vec![pair(ALICE.id, "FULL_CONTROL"), pair(ALL_USERS, "READ")]);
    assert_eq!(acl.grants()[1].grantee().map(Grantee::r#type), Some(&Type::Group));
    assert_eq!(acl.grants()[0].grantee().and_then(Grantee::display_name), Some(ALICE.name));
    // Bob may read the public object, not the private one, nor either's ACL.
    bob.get_object().bucket("acls").key("pub.txt").send().await.expect("public read");
    assert_eq!(code(bob.get_object().bucket("acls").key("private.txt").send().await).await, "AccessDenied");
    assert_eq!(code(bob.get_object_acl().bucket("acls").key("pub.txt").send().await).await, "AccessDenied");

    // Grants by id: Bob may write (and owns what he writes), not list.
    let put = bob.put_object().bucket("acls").key("bob.txt").body(b"b".to_vec().into()).send().await;
    assert_eq!(code(put).await, "AccessDenied");
    let grant = alice.put_bucket_acl().bucket("acls").grant_full_control(format!("id={}", ALICE.id));
    grant.grant_write(format!("id=\"{}\"", BOB.id)).send().await.expect("grant write");
    let acl = alice.get_bucket_acl().bucket("acls").send().await.expect("acl");
    assert_eq!(grants(acl.grants()), vec![pair(ALICE.id, "FULL_CONTROL"), pair(BOB.id, "WRITE")]);
    bob.put_object().bucket("acls").key("bob.txt").body(b"b".to_vec().into()).send().await.expect("granted write");
    assert_eq!(code(bob.list_objects_v2().bucket("acls").send().await).await, "AccessDenied");
    let listed = alice.list_objects_v2().bucket("acls").prefix("bob").fetch_owner(true).send().await.expect("list");
    assert_eq!(listed.contents()[0].owner().and_then(Owner::id), Some(BOB.id));
    bob.get_object().bucket("acls").key("bob.txt").send().await.expect("an owner reads its own object");
    let acl = bob.get_object_acl().bucket("acls").key("bob.txt").send().await.expect("own acl");
    assert_eq!(acl.owner().and_then(Owner::id), Some(BOB.id));
    // Bob lets Alice read his object's ACL with a policy document.
    let policy = AccessControlPolicy::builder()
        .owner(Owner::builder().id(BOB.id).build())
        .grants(
            Grant::builder()
                .grantee(Grantee::builder().r#type(Type::CanonicalUser).id(BOB.id).build().expect("grantee"))
                .permission(Permission::FullControl)
                .build(),
        )
        .grants(
            Grant::builder()
                .grantee(Grantee::builder().r#type(Type::CanonicalUser).id(ALICE.id).build().expect("grantee"))
                .permission(Permission::ReadAcp)
                .build(),
        )
        .build();
    bob.put_object_acl().bucket("acls").key("bob.txt").access_control_policy(policy).send().await.expect("object acl");
    let acl = alice.get_object_acl().bucket("acls").key("bob.txt").send().await.expect("acl");
    assert_eq!(grants(acl.grants()), vec![pair(BOB.id, "FULL_CONTROL"), pair(ALICE.id, "READ_ACP")]);
    // Grants that cannot be: an unknown id, an e-mail address, a canned ACL with grants.
    let put = alice.put_bucket_acl().bucket("acls").grant_read("id=nobody").send().await;
    assert_eq!(code(put).await, "InvalidArgument");
    let put = alice.put_bucket_acl().bucket("acls").grant_read("emailAddress=\"a@example.com\"").send().await;
    assert_eq!(code(put).await, "UnresolvableGrantByEmailAddress");
    let put = alice.put_bucket_acl().bucket("acls").acl(BucketCannedAcl::Private).grant_read("id=bob-id").send().await;
    assert_eq!(code(put).await, "InvalidRequest");

    // Back to ACLs disabled: only once the bucket's ACL grants nobody else anything.
    let enforce = alice.put_bucket_ownership_controls().bucket("acls");
    let put = enforce.ownership_controls(controls(ObjectOwnership::BucketOwnerEnforced)).send().await;
    assert_eq!(code(put).await, "InvalidBucketAclWithObjectOwnership");
    alice.put_bucket_acl().bucket("acls").acl(BucketCannedAcl::Private).send().await.expect("private");
    let enforce = alice.put_bucket_ownership_controls().bucket("acls");
    enforce.ownership_controls(controls(ObjectOwnership::BucketOwnerEnforced)).send().await.expect("enforced");
    let got = anonymous("/acls/pub.txt").send(server.addr).await;
    got.assert_error(403, "AccessDenied");
    let acl = alice.get_object_acl().bucket("acls").key("pub.txt").send().await.expect("acl");
    // With ACLs disabled every object reads as the bucket owner's, whatever it had before.
    assert_eq!(grants(acl.grants()), vec![pair(ALICE.id, "FULL_CONTROL")]);

    // BucketOwnerPreferred: the bucket's owner owns what is written bucket-owner-full-control.
    let prefer = alice.put_bucket_ownership_controls().bucket("acls");
    prefer.ownership_controls(controls(ObjectOwnership::BucketOwnerPreferred)).send().await.expect("preferred");
    alice.put_bucket_acl().bucket("acls").grant_write(format!("id={}", BOB.id)).send().await.expect("grant");
    let put = bob.put_object().bucket("acls").key("given.txt").acl(ObjectCannedAcl::BucketOwnerFullControl);
    put.body(b"g".to_vec().into()).send().await.expect("put");
    bob.put_object().bucket("acls").key("kept.txt").body(b"k".to_vec().into()).send().await.expect("put");
    let listed = alice.list_objects_v2().bucket("acls").fetch_owner(true).send().await.expect("list");
    let owner_of = |key: &str| {
        listed
            .contents()
            .iter()
            .find(|o| o.key() == Some(key))
            .and_then(|o| o.owner())
            .and_then(Owner::id)
            .map(str::to_owned)
    };
    assert_eq!(owner_of("given.txt").as_deref(), Some(ALICE.id));
    assert_eq!(owner_of("kept.txt").as_deref(), Some(BOB.id));

    // Without ownership controls a bucket behaves as ObjectWriter.
    alice.delete_bucket_ownership_controls().bucket("acls").send().await.expect("delete");
    let got = alice.get_bucket_ownership_controls().bucket("acls").send().await;
    assert_eq!(code(got).await, "OwnershipControlsNotFoundError");
    server.stop().await;
}

/// A POST form whose body never reaches a boundary is refused once the bytes before the file
/// pass the limit, not buffered; a policy's Deny of s3:PutObjectAcl keeps writers from setting
/// ACLs; callers only an object's ACL could admit learn nothing of missing keys or versions.
#[tokio::test]
async fn acl_limits_and_what_others_learn() {
    let server = TestServer::start().await;
    let alice = server.client(ALICE, Style::Path);
    let bob = server.client(BOB, Style::Path);
    alice.create_bucket().bucket("wbox").object_ownership(ObjectOwnership::ObjectWriter).send().await.expect("bucket");
    alice.delete_public_access_block().bucket("wbox").send().await.expect("lift the block");
    alice.put_bucket_acl().bucket("wbox").grant_write(format!("id={}", BOB.id)).send().await.expect("grant");

    let endless = vec![b'x'; 256 * 1024];
    let resp = Raw::new("POST", &server.host("wbox", Style::Path), "/wbox")
        .header("content-type", "multipart/form-data; boundary=never-sent")
        .body(&endless)
        .send(server.addr)
        .await;
    resp.assert_error(400, "MaxPostPreDataLengthExceeded");

    let put = bob.put_object().bucket("wbox").key("b").acl(ObjectCannedAcl::PublicRead).body(b"x".to_vec().into());
    put.send().await.expect("a writer the ACL admits may give its object an ACL");
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:PutObjectAcl",
        "Resource":"arn:aws:s3:::wbox/*"}]}"#;
    alice.put_bucket_policy().bucket("wbox").policy(deny).send().await.expect("policy");
    let put = bob.put_object().bucket("wbox").key("c").acl(ObjectCannedAcl::PublicRead).body(b"x".to_vec().into());
    assert_eq!(code(put.send().await).await, "AccessDenied");
    bob.put_object().bucket("wbox").key("c").body(b"x".to_vec().into()).send().await.expect("no ACL: allowed");
    let put = bob.put_object_acl().bucket("wbox").key("c").acl(ObjectCannedAcl::PublicRead).send().await;
    assert_eq!(code(put).await, "AccessDenied");

    // Missing keys and versions: 403 for Bob (who may not list), 404 for Alice.
    assert_eq!(code(bob.get_object().bucket("wbox").key("missing").send().await).await, "AccessDenied");
    assert_eq!(code(bob.get_object_acl().bucket("wbox").key("missing").send().await).await, "AccessDenied");
    assert_eq!(code(alice.get_object_acl().bucket("wbox").key("missing").send().await).await, "NoSuchKey");
    let copy = bob.copy_object().bucket("wbox").key("copy").copy_source("wbox/missing").send().await;
    assert_eq!(code(copy).await, "AccessDenied");
    server.stop().await;
}
