//! Service catalog of a token and the Masakari endpoint chosen from it.

use serde::Deserialize;

/// Catalog service type of Masakari.
pub const SERVICE_TYPE: &str = "instance-ha";
/// The os-service-types alias of `instance-ha`.
const SERVICE_TYPE_ALIAS: &str = "ha";

/// One service of the token's `catalog`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CatalogService {
    #[serde(rename = "type")]
    pub service_type: String,
    #[serde(default)]
    pub endpoints: Vec<CatalogEndpoint>,
}

/// One endpoint of a catalog service.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CatalogEndpoint {
    #[serde(default)]
    pub interface: String,
    #[serde(default)]
    pub region_id: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub url: String,
}

/// Selects the Masakari endpoint URL as keystoneauth does.
///
/// Services of type `instance-ha` are searched before those of its alias `ha`. An endpoint
/// matches when its interface equals `interface`, ignoring a `publicURL`-style `URL` suffix.
/// Its `region_id`, or else its `region`, must equal `region`, unless `region` is empty.
/// Endpoints with an empty URL are skipped and the first match wins.
pub fn select_endpoint(
    catalog: &[CatalogService],
    interface: &str,
    region: &str,
) -> Option<String> {
    let wanted = strip_url_suffix(interface);
    [SERVICE_TYPE, SERVICE_TYPE_ALIAS]
        .into_iter()
        .flat_map(|service_type| {
            catalog
                .iter()
                .filter(move |s| s.service_type == service_type)
        })
        .flat_map(|service| service.endpoints.iter())
        .find(|endpoint| {
            !endpoint.url.is_empty()
                && strip_url_suffix(&endpoint.interface) == wanted
                && region_matches(endpoint, region)
        })
        .map(|endpoint| endpoint.url.clone())
}

fn region_matches(endpoint: &CatalogEndpoint, region: &str) -> bool {
    if region.is_empty() {
        return true;
    }
    match endpoint.region_id.as_deref().filter(|r| !r.is_empty()) {
        Some(region_id) => region_id == region,
        None => endpoint.region.as_deref() == Some(region),
    }
}

/// Turns `publicURL` into `public`, as keystoneauth accepts both spellings.
fn strip_url_suffix(interface: &str) -> &str {
    interface.strip_suffix("URL").unwrap_or(interface)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog(value: serde_json::Value) -> Vec<CatalogService> {
        serde_json::from_value(value).unwrap()
    }

    fn sample() -> Vec<CatalogService> {
        catalog(json!([
            {"type": "identity", "endpoints": [
                {"interface": "public", "region_id": "RegionOne", "url": "http://keystone/v3"}]},
            {"type": "ha", "endpoints": [
                {"interface": "public", "region_id": "RegionOne", "url": "http://alias/v1"}]},
            {"type": "instance-ha", "endpoints": [
                {"interface": "public", "region_id": "RegionTwo", "url": "http://two/v1"},
                {"interface": "internal", "region_id": "RegionOne", "url": "http://internal/v1"},
                {"interface": "public", "region_id": "RegionOne", "url": ""},
                {"interface": "public", "region_id": "RegionOne", "url": "http://public/v1/p1"},
                {"interface": "admin", "region": "RegionOne", "url": "http://admin/v1"}
            ]}
        ]))
    }

    #[test]
    fn exact_type_preferred_over_alias() {
        assert_eq!(
            select_endpoint(&sample(), "public", "RegionOne").as_deref(),
            Some("http://public/v1/p1")
        );
    }

    #[test]
    fn interface_and_region_select() {
        let catalog = sample();
        assert_eq!(
            select_endpoint(&catalog, "internal", "RegionOne").as_deref(),
            Some("http://internal/v1")
        );
        assert_eq!(
            select_endpoint(&catalog, "public", "RegionTwo").as_deref(),
            Some("http://two/v1")
        );
        assert_eq!(
            select_endpoint(&catalog, "publicURL", "RegionTwo").as_deref(),
            Some("http://two/v1")
        );
        assert_eq!(select_endpoint(&catalog, "internal", "RegionTwo"), None);
    }

    #[test]
    fn region_falls_back_to_deprecated_field() {
        assert_eq!(
            select_endpoint(&sample(), "admin", "RegionOne").as_deref(),
            Some("http://admin/v1")
        );
    }

    #[test]
    fn alias_used_when_type_missing() {
        let catalog = catalog(json!([
            {"type": "ha", "endpoints": [
                {"interface": "publicURL", "region": "RegionOne", "url": "http://alias/v1"}]}
        ]));
        assert_eq!(
            select_endpoint(&catalog, "public", "RegionOne").as_deref(),
            Some("http://alias/v1")
        );
    }

    #[test]
    fn empty_region_matches_any() {
        assert_eq!(
            select_endpoint(&sample(), "public", "").as_deref(),
            Some("http://two/v1")
        );
    }

    #[test]
    fn empty_catalog_has_no_endpoint() {
        assert_eq!(select_endpoint(&[], "public", "RegionOne"), None);
    }
}
