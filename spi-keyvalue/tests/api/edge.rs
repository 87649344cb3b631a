//! The HTTP edge every SPI shares: mutual TLS only, request ids, the 404 envelope.

spi_kit::edge_tests!(spi_keyvalue::KeyValue);
