//! The HTTP edge every SPI shares: mutual TLS only, request ids, the 404 envelope.

testkit::edge_tests!(spi_postgres::Postgres);
