//! Collections in SQLite: the `collections`, `collection_members` and `member_metadata`
//! tables of schema version 2 (see the schema in `sqlite.rs`). Every write is one
//! `BEGIN IMMEDIATE` transaction; every read of a collection and its members is one snapshot.

use sha2::{Digest, Sha256};
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row, SqliteConnection};

use super::{sql, MetadataOwner, SqliteCatalog};
use crate::collection::validate_blend_px;
use crate::model::EncodedMetadata;
use crate::{
    validate, CatalogError, CollectionInfo, DatasetMetadata, InsertOutcome, Member, MemberRef,
    MemberSettings,
};

/// A member ref resolved inside a transaction: the dataset's row id, or the URI and its digest.
enum Resolved<'a> {
    Dataset(i64),
    Uri { uri: &'a str, sha256: String },
}

fn uri_sha256(uri: &str) -> String {
    Sha256::digest(uri.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Columns of `collections` read into a [`CollectionInfo`], with the member count.
const COLLECTION_COLUMNS: &str = "c.id, c.name, c.description, c.blend_px, \
     (SELECT count(*) FROM collection_members m WHERE m.collection_id = c.id)";

impl SqliteCatalog {
    fn collection_not_found(&self, name: &str) -> CatalogError {
        CatalogError::NotFound {
            catalog: self.label.clone(),
            what: format!("collection {name:?}"),
        }
    }

    fn member_not_found(&self, name: &str, source: &MemberRef) -> CatalogError {
        CatalogError::NotFound {
            catalog: self.label.clone(),
            what: format!("{source} in collection {name:?}"),
        }
    }

    /// Checks a ref's keys or URI before any SQL.
    fn validate_ref(&self, source: &MemberRef) -> Result<(), CatalogError> {
        match source {
            MemberRef::Dataset(keys) => validate::key_values(keys, self.keys.len()),
            MemberRef::Uri(uri) => validate::uri(uri),
        }
    }

    async fn begin_write(
        &self,
        operation: &'static str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, CatalogError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.err(operation))
    }

    async fn collection_id(
        &self,
        conn: &mut SqliteConnection,
        name: &str,
    ) -> Result<i64, CatalogError> {
        let row = sqlx::query("SELECT id FROM collections WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await
            .map_err(self.err("find collection"))?
            .ok_or_else(|| self.collection_not_found(name))?;
        row.try_get(0).map_err(self.err("find collection"))
    }

    /// The ref's row id or URI digest; a dataset that does not exist is `NotFound`.
    async fn resolve<'s>(
        &self,
        conn: &mut SqliteConnection,
        source: &'s MemberRef,
    ) -> Result<Resolved<'s>, CatalogError> {
        match source {
            MemberRef::Dataset(keys) => {
                let id = self
                    .dataset_id(conn, keys)
                    .await?
                    .ok_or_else(|| self.not_found(keys))?;
                Ok(Resolved::Dataset(id))
            }
            MemberRef::Uri(uri) => Ok(Resolved::Uri {
                uri,
                sha256: uri_sha256(uri),
            }),
        }
    }

    async fn member_id(
        &self,
        conn: &mut SqliteConnection,
        collection_id: i64,
        resolved: &Resolved<'_>,
    ) -> Result<Option<i64>, CatalogError> {
        let query = match resolved {
            Resolved::Dataset(id) => sqlx::query(
                "SELECT id FROM collection_members WHERE collection_id = ? AND dataset_id = ?",
            )
            .bind(collection_id)
            .bind(*id),
            Resolved::Uri { sha256, .. } => sqlx::query(
                "SELECT id FROM collection_members WHERE collection_id = ? AND uri_sha256 = ?",
            )
            .bind(collection_id)
            .bind(sha256.clone()),
        };
        let row = query
            .fetch_optional(&mut *conn)
            .await
            .map_err(self.err("find member"))?;
        row.map(|r| r.try_get(0))
            .transpose()
            .map_err(self.err("find member"))
    }

    pub(super) async fn create_collection_impl(
        &self,
        name: &str,
        description: &str,
    ) -> Result<bool, CatalogError> {
        validate::collection_name(name)?;
        validate::collection_description(description)?;
        let mut tx = self.begin_write("begin create collection").await?;
        let exists = sqlx::query("SELECT 1 FROM collections WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(self.err("find collection"))?
            .is_some();
        if exists {
            return Ok(false);
        }
        sqlx::query("INSERT INTO collections (name, description, blend_px) VALUES (?, ?, 0)")
            .bind(name)
            .bind(description)
            .execute(&mut *tx)
            .await
            .map_err(self.err("create collection"))?;
        self.faults.step(&self.label)?;
        tx.commit()
            .await
            .map_err(self.err("commit create collection"))?;
        Ok(true)
    }

    pub(super) async fn update_collection_impl(
        &self,
        name: &str,
        description: Option<&str>,
        blend_px: Option<f64>,
    ) -> Result<(), CatalogError> {
        validate::collection_name(name)?;
        if let Some(d) = description {
            validate::collection_description(d)?;
        }
        if let Some(b) = blend_px {
            validate_blend_px(b)?;
        }
        let mut tx = self.begin_write("begin update collection").await?;
        let id = self.collection_id(&mut tx, name).await?;
        if let Some(d) = description {
            sqlx::query("UPDATE collections SET description = ? WHERE id = ?")
                .bind(d)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(self.err("update collection"))?;
            self.faults.step(&self.label)?;
        }
        if let Some(b) = blend_px {
            sqlx::query("UPDATE collections SET blend_px = ? WHERE id = ?")
                .bind(b)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(self.err("update collection"))?;
            self.faults.step(&self.label)?;
        }
        tx.commit()
            .await
            .map_err(self.err("commit update collection"))?;
        Ok(())
    }

    fn decode_collection(&self, row: &SqliteRow) -> Result<(i64, CollectionInfo), CatalogError> {
        let decode = self.err("read collection");
        let id: i64 = row.try_get(0).map_err(&decode)?;
        let count: i64 = row.try_get(4).map_err(&decode)?;
        Ok((
            id,
            CollectionInfo {
                name: row.try_get(1).map_err(&decode)?,
                description: row.try_get(2).map_err(&decode)?,
                blend_px: row.try_get(3).map_err(&decode)?,
                member_count: u64::try_from(count).unwrap_or(0),
            },
        ))
    }

    pub(super) async fn collections_impl(&self) -> Result<Vec<CollectionInfo>, CatalogError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLLECTION_COLUMNS} FROM collections c ORDER BY c.name"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("list collections"))?;
        rows.iter()
            .map(|row| self.decode_collection(row).map(|(_, info)| info))
            .collect()
    }

    pub(super) async fn collection_impl(
        &self,
        name: &str,
    ) -> Result<(CollectionInfo, Vec<Member>), CatalogError> {
        validate::collection_name(name)?;
        // A read transaction: the collection row and its members come from one snapshot.
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.err("begin read collection"))?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLLECTION_COLUMNS} FROM collections c WHERE c.name = ?"
        )))
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(self.err("read collection"))?
        .ok_or_else(|| self.collection_not_found(name))?;
        let (id, info) = self.decode_collection(&row)?;
        let rows = sqlx::query(sql(&self.sql.select_members))
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(self.err("read members"))?;
        tx.commit().await.map_err(self.err("end read collection"))?;
        let members = rows
            .iter()
            .map(|row| self.decode_member(row))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((info, members))
    }

    /// One row of `select_members`: 6 settings, dataset id, member URI, dataset URI,
    /// 11 metadata columns, then the dataset's key values.
    fn decode_member(&self, row: &SqliteRow) -> Result<Member, CatalogError> {
        let decode = self.err("read members");
        let schema = |reason: String| CatalogError::Schema {
            catalog: self.label.clone(),
            reason,
        };
        let priority: i64 = row.try_get(0).map_err(&decode)?;
        let zoom = |i: usize| -> Result<Option<u8>, CatalogError> {
            let z: Option<i64> = row.try_get(i).map_err(&decode)?;
            z.map(|z| u8::try_from(z).map_err(|_| schema(format!("stored zoom {z} is invalid"))))
                .transpose()
        };
        let enabled: i64 = row.try_get(4).map_err(&decode)?;
        let settings = MemberSettings {
            priority: i32::try_from(priority)
                .map_err(|_| schema(format!("stored priority {priority} is invalid")))?,
            min_zoom: zoom(1)?,
            max_zoom: zoom(2)?,
            acquired: row.try_get(3).map_err(&decode)?,
            enabled: enabled != 0,
            nodata: row.try_get(5).map_err(&decode)?,
        };
        let dataset_id: Option<i64> = row.try_get(6).map_err(&decode)?;
        let own_uri: Option<String> = row.try_get(7).map_err(&decode)?;
        let dataset_uri: Option<String> = row.try_get(8).map_err(&decode)?;
        let metadata = self.decode_metadata(row, 9)?;
        let (source, uri) = match (dataset_id, own_uri, dataset_uri) {
            (Some(_), None, Some(uri)) => {
                let keys = (0..self.keys.len())
                    .map(|i| row.try_get::<String, _>(20 + i))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(&decode)?;
                (MemberRef::Dataset(keys), uri)
            }
            (None, Some(uri), _) => (MemberRef::Uri(uri.clone()), uri),
            _ => {
                return Err(schema(
                    "a collection member is neither a dataset nor a URI".into(),
                ))
            }
        };
        Ok(Member {
            source,
            settings,
            uri,
            metadata,
        })
    }

    pub(super) async fn put_member_impl(
        &self,
        name: &str,
        source: &MemberRef,
        settings: &MemberSettings,
        metadata: Option<&DatasetMetadata>,
    ) -> Result<InsertOutcome, CatalogError> {
        validate::collection_name(name)?;
        self.validate_ref(source)?;
        settings.validate()?;
        if matches!(source, MemberRef::Dataset(_)) && metadata.is_some() {
            return Err(CatalogError::bad(
                "metadata",
                "a dataset member has its dataset's metadata; only URI members store their own",
            ));
        }
        let encoded = metadata.map(EncodedMetadata::encode).transpose()?;
        let mut tx = self.begin_write("begin put member").await?;
        let collection_id = self.collection_id(&mut tx, name).await?;
        let resolved = self.resolve(&mut tx, source).await?;
        let existing = self.member_id(&mut tx, collection_id, &resolved).await?;
        let min_zoom = settings.min_zoom.map(i64::from);
        let max_zoom = settings.max_zoom.map(i64::from);
        let enabled = i64::from(settings.enabled);
        let (member_id, outcome) = match existing {
            Some(member_id) => {
                sqlx::query(
                    "UPDATE collection_members SET priority = ?, min_zoom = ?, max_zoom = ?, \
                     acquired = ?, enabled = ?, nodata = ? WHERE id = ?",
                )
                .bind(settings.priority)
                .bind(min_zoom)
                .bind(max_zoom)
                .bind(settings.acquired.as_deref())
                .bind(enabled)
                .bind(settings.nodata)
                .bind(member_id)
                .execute(&mut *tx)
                .await
                .map_err(self.err("update member"))?;
                self.faults.step(&self.label)?;
                if encoded.is_some() {
                    self.delete_metadata_of(&mut tx, MetadataOwner::Member, member_id)
                        .await?;
                    self.faults.step(&self.label)?;
                }
                (member_id, InsertOutcome::Replaced)
            }
            None => {
                let (dataset_id, uri, sha256) = match &resolved {
                    Resolved::Dataset(id) => (Some(*id), None, None),
                    Resolved::Uri { uri, sha256 } => (None, Some(*uri), Some(sha256.as_str())),
                };
                let done = sqlx::query(
                    "INSERT INTO collection_members (collection_id, dataset_id, uri, uri_sha256, \
                     priority, min_zoom, max_zoom, acquired, enabled, nodata) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(collection_id)
                .bind(dataset_id)
                .bind(uri)
                .bind(sha256)
                .bind(settings.priority)
                .bind(min_zoom)
                .bind(max_zoom)
                .bind(settings.acquired.as_deref())
                .bind(enabled)
                .bind(settings.nodata)
                .execute(&mut *tx)
                .await
                .map_err(self.err("insert member"))?;
                self.faults.step(&self.label)?;
                (done.last_insert_rowid(), InsertOutcome::Inserted)
            }
        };
        if let Some(m) = &encoded {
            self.write_metadata_of(&mut tx, MetadataOwner::Member, member_id, m)
                .await?;
            self.faults.step(&self.label)?;
        }
        tx.commit().await.map_err(self.err("commit put member"))?;
        Ok(outcome)
    }

    pub(super) async fn remove_member_impl(
        &self,
        name: &str,
        source: &MemberRef,
    ) -> Result<(), CatalogError> {
        validate::collection_name(name)?;
        self.validate_ref(source)?;
        let mut tx = self.begin_write("begin remove member").await?;
        let collection_id = self.collection_id(&mut tx, name).await?;
        // A dataset that no longer exists is no member of anything.
        let resolved = match self.resolve(&mut tx, source).await {
            Err(CatalogError::NotFound { .. }) => None,
            other => Some(other?),
        };
        let member_id = match &resolved {
            Some(r) => self.member_id(&mut tx, collection_id, r).await?,
            None => None,
        }
        .ok_or_else(|| self.member_not_found(name, source))?;
        self.delete_metadata_of(&mut tx, MetadataOwner::Member, member_id)
            .await?;
        self.faults.step(&self.label)?;
        sqlx::query("DELETE FROM collection_members WHERE id = ?")
            .bind(member_id)
            .execute(&mut *tx)
            .await
            .map_err(self.err("remove member"))?;
        self.faults.step(&self.label)?;
        tx.commit()
            .await
            .map_err(self.err("commit remove member"))?;
        Ok(())
    }

    pub(super) async fn delete_collection_impl(&self, name: &str) -> Result<(), CatalogError> {
        validate::collection_name(name)?;
        let mut tx = self.begin_write("begin delete collection").await?;
        let id = self.collection_id(&mut tx, name).await?;
        // Explicit rather than by ON DELETE CASCADE alone, so the failure hook can cut between.
        sqlx::query(
            "DELETE FROM member_metadata WHERE member_id IN \
             (SELECT id FROM collection_members WHERE collection_id = ?)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(self.err("delete collection"))?;
        self.faults.step(&self.label)?;
        sqlx::query("DELETE FROM collection_members WHERE collection_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(self.err("delete collection"))?;
        self.faults.step(&self.label)?;
        sqlx::query("DELETE FROM collections WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(self.err("delete collection"))?;
        self.faults.step(&self.label)?;
        tx.commit()
            .await
            .map_err(self.err("commit delete collection"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::uri_sha256;

    #[test]
    fn uri_digest_is_sha256_hex() {
        // Known SHA-256 test vector ("abc", FIPS 180-2).
        assert_eq!(
            uri_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
