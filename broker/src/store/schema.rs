//! Diesel table definitions, matching `migrations/sqlite` and `migrations/postgres`.

diesel::table! {
    /// Service instances.
    service_instances (id) {
        id -> Text,
        service_id -> Text,
        plan_id -> Text,
        parameters -> Text,
        context -> Nullable<Text>,
        organization_guid -> Nullable<Text>,
        space_guid -> Nullable<Text>,
        maintenance_version -> Nullable<Text>,
        dashboard_url -> Nullable<Text>,
        state -> Text,
        deployment_name -> Nullable<Text>,
        deployment_spec_enc -> Nullable<Text>,
        endpoints -> Nullable<Text>,
        created_at_ms -> BigInt,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    /// Service bindings.
    service_bindings (id) {
        id -> Text,
        instance_id -> Text,
        service_id -> Text,
        plan_id -> Text,
        parameters -> Text,
        context -> Nullable<Text>,
        bind_resource -> Nullable<Text>,
        app_guid -> Nullable<Text>,
        state -> Text,
        credentials_enc -> Nullable<Text>,
        endpoints -> Nullable<Text>,
        created_at_ms -> BigInt,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    /// The operation journal.
    operations (id) {
        id -> Text,
        instance_id -> Text,
        binding_id -> Nullable<Text>,
        kind -> Text,
        state -> Text,
        description -> Text,
        step -> Text,
        payload -> Text,
        request_id -> Nullable<Text>,
        originating_identity -> Nullable<Text>,
        lease_owner -> Nullable<Text>,
        lease_expires_ms -> Nullable<BigInt>,
        attempts -> BigInt,
        created_at_ms -> BigInt,
        updated_at_ms -> BigInt,
        finished_at_ms -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// The row every write transaction updates first (the `write_lock` migration).
    write_lock (id) {
        id -> Integer,
        writes -> BigInt,
    }
}

diesel::table! {
    /// The configured webhook endpoints and the event kinds each wants (the `outbox`
    /// migration); written by the broker at start.
    webhook_endpoints (name) {
        name -> Text,
        events -> Text,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    /// Callback events waiting for (or done with) delivery, one row per event and endpoint.
    outbox (seq) {
        seq -> BigInt,
        event_id -> Text,
        endpoint -> Text,
        instance_id -> Text,
        operation_id -> Text,
        kind -> Text,
        body -> Text,
        state -> Text,
        attempts -> BigInt,
        next_attempt_ms -> BigInt,
        last_error -> Nullable<Text>,
        created_at_ms -> BigInt,
        delivered_at_ms -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// The one lease of the webhook dispatcher among the brokers sharing the database.
    outbox_lease (name) {
        name -> Text,
        owner -> Nullable<Text>,
        expires_ms -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Event flows still to run for an ended operation (the `flows` migration; queries in
    /// `store/flows.rs`).
    operation_flows (operation_id) {
        operation_id -> Text,
        request -> Text,
        next_flow -> BigInt,
        lease_owner -> Nullable<Text>,
        lease_expires_ms -> Nullable<BigInt>,
        attempts -> BigInt,
        created_at_ms -> BigInt,
    }
}

diesel::joinable!(service_bindings -> service_instances (instance_id));
diesel::joinable!(operations -> service_instances (instance_id));
diesel::allow_tables_to_appear_in_same_query!(service_instances, service_bindings, operations);
