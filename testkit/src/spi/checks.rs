//! The one way the check macros ([`crate::api_tests!`], [`crate::offering_tests!`],
//! [`crate::spec_tests!`], [`crate::binding_tests!`]) turn the checks of a module of
//! [`crate::spi`] into tests of a data service.

/// One test per check `$check` of module `crate::spi::$module`, on data service `$service`:
/// `plain` checks are plain functions (`#[test]`), `awaited` ones are async (`#[tokio::test]`),
/// and `on_app` ones are async and take the SPI of `$service` started by
/// [`crate::spi::spawn_app`]. Async checks need `tokio` in the calling crate.
#[doc(hidden)]
#[macro_export]
macro_rules! __spi_checks {
    (plain $module:ident $service:ty; $($check:ident,)+) => {
        $(
            #[test]
            fn $check() {
                $crate::spi::$module::$check::<$service>();
            }
        )+
    };
    (awaited $module:ident $service:ty; $($check:ident,)+) => {
        $(
            #[tokio::test]
            async fn $check() {
                $crate::spi::$module::$check::<$service>().await;
            }
        )+
    };
    (on_app $module:ident $service:ty; $($check:ident,)+) => {
        $(
            #[tokio::test]
            async fn $check() {
                let app = $crate::spi::spawn_app::<$service>().await;
                $crate::spi::$module::$check::<$service>(&app).await;
            }
        )+
    };
}
