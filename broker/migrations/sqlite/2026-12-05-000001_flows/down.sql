DROP TABLE operation_flows;
