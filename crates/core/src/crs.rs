//! Coordinate reference systems and transforms between them.

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// A coordinate reference system: an EPSG code when one is known, and always a PROJ.4-style
/// definition string that `proj4rs` can build a projection from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crs {
    /// EPSG code, when the source names one.
    pub epsg: Option<u32>,
    /// PROJ.4 definition (`+proj=... +units=m +no_defs`).
    pub proj4: String,
}

impl Crs {
    /// The CRS of an EPSG code, from the offline definitions of `crs-definitions`.
    pub fn from_epsg(code: u32) -> Result<Self, CoreError> {
        let def = u16::try_from(code)
            .ok()
            .and_then(crs_definitions::from_code)
            .ok_or_else(|| {
                CoreError::unsupported("CRS", format!("EPSG:{code} is not a known EPSG code"))
            })?;
        if def.proj4.is_empty() {
            return Err(CoreError::unsupported(
                "CRS",
                format!("EPSG:{code} has no PROJ.4 definition"),
            ));
        }
        Ok(Self {
            epsg: Some(code),
            proj4: def.proj4.to_string(),
        })
    }

    /// A CRS from a PROJ.4 definition with no EPSG code.
    pub fn from_proj4(proj4: impl Into<String>) -> Self {
        Self {
            epsg: None,
            proj4: proj4.into(),
        }
    }

    /// WGS 84 longitude/latitude in degrees (EPSG:4326).
    pub fn wgs84() -> Self {
        Self {
            epsg: Some(4326),
            proj4: "+proj=longlat +datum=WGS84 +no_defs".into(),
        }
    }

    /// WGS 84 / Pseudo-Mercator (EPSG:3857).
    pub fn web_mercator() -> Self {
        Self {
            epsg: Some(3857),
            proj4: "+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +nadgrids=@null +wktext +no_defs".into(),
        }
    }

    /// A short human-readable name: `EPSG:4326` or the PROJ.4 string.
    pub fn name(&self) -> String {
        match self.epsg {
            Some(code) => format!("EPSG:{code}"),
            None => self.proj4.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsg_lookup() {
        let c = Crs::from_epsg(32618).unwrap();
        assert!(
            c.proj4.contains("+proj=utm") && c.proj4.contains("+zone=18"),
            "{}",
            c.proj4
        );
        assert!(Crs::from_epsg(99_999_999).is_err());
        assert!(Crs::from_epsg(4326).unwrap().proj4.contains("longlat"));
    }
}
