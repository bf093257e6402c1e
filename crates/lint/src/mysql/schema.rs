//! The tables earlier migrations created, as far as the MySQL linter follows them: enough to
//! tell a type change from a new default, and a new table (free to change) from an old one.

use std::collections::HashMap;

use sqlparser::ast::{AlterTableOperation, ColumnDef, ColumnOption, ObjectName};

/// A column as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The type as written, lower-cased (`varchar(20)`).
    pub data_type: String,
    pub nullable: bool,
}

/// A table the migrations created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub columns: HashMap<String, Column>,
    /// Created by the migration being linted (or one not yet applied): nobody uses it yet.
    pub new: bool,
}

/// Tables by lower-cased name.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    tables: HashMap<String, Table>,
}

/// A table's name as the schema keys it: its last part, lower-cased.
pub fn table_key(name: &ObjectName) -> String {
    name.0
        .last()
        .map(|part| part.to_string().trim_matches('`').to_ascii_lowercase())
        .unwrap_or_default()
}

fn column_from(definition: &ColumnDef) -> Column {
    Column {
        data_type: definition.data_type.to_string().to_ascii_lowercase(),
        nullable: !definition.options.iter().any(|o| {
            matches!(
                o.option,
                ColumnOption::NotNull | ColumnOption::PrimaryKey(_)
            )
        }),
    }
}

impl Schema {
    pub fn table(&self, table: &str) -> Option<&Table> {
        self.tables.get(table)
    }

    pub fn column(&self, table: &str, column: &str) -> Option<&Column> {
        self.tables
            .get(table)?
            .columns
            .get(&column.to_ascii_lowercase())
    }

    pub fn create(&mut self, table: String, columns: &[ColumnDef], new: bool) {
        let columns = columns
            .iter()
            .map(|c| (c.name.value.to_ascii_lowercase(), column_from(c)))
            .collect();
        self.tables.insert(table, Table { columns, new });
    }

    pub fn drop(&mut self, table: &str) {
        self.tables.remove(table);
    }

    pub fn rename(&mut self, from: &str, to: String) {
        if let Some(table) = self.tables.remove(from) {
            self.tables.insert(to, table);
        }
    }

    /// Follows an `ALTER TABLE`'s column changes.
    pub fn alter(&mut self, table: &str, operations: &[AlterTableOperation]) {
        let Some(entry) = self.tables.get_mut(table) else {
            return;
        };
        for operation in operations {
            match operation {
                AlterTableOperation::AddColumn { column_def, .. } => {
                    entry.columns.insert(
                        column_def.name.value.to_ascii_lowercase(),
                        column_from(column_def),
                    );
                }
                AlterTableOperation::DropColumn { column_names, .. } => {
                    for name in column_names {
                        entry.columns.remove(&name.value.to_ascii_lowercase());
                    }
                }
                AlterTableOperation::RenameColumn {
                    old_column_name,
                    new_column_name,
                } => {
                    if let Some(column) = entry
                        .columns
                        .remove(&old_column_name.value.to_ascii_lowercase())
                    {
                        entry
                            .columns
                            .insert(new_column_name.value.to_ascii_lowercase(), column);
                    }
                }
                AlterTableOperation::ChangeColumn {
                    old_name,
                    new_name,
                    data_type,
                    options,
                    ..
                } => {
                    entry.columns.remove(&old_name.value.to_ascii_lowercase());
                    entry.columns.insert(
                        new_name.value.to_ascii_lowercase(),
                        Column {
                            data_type: data_type.to_string().to_ascii_lowercase(),
                            nullable: !options.iter().any(|o| matches!(o, ColumnOption::NotNull)),
                        },
                    );
                }
                AlterTableOperation::ModifyColumn {
                    col_name,
                    data_type,
                    options,
                    ..
                } => {
                    entry.columns.insert(
                        col_name.value.to_ascii_lowercase(),
                        Column {
                            data_type: data_type.to_string().to_ascii_lowercase(),
                            nullable: !options.iter().any(|o| matches!(o, ColumnOption::NotNull)),
                        },
                    );
                }
                _ => {}
            }
        }
    }

    /// Marks every table as in use (the migrations that made them are applied).
    pub fn settle(&mut self) {
        for table in self.tables.values_mut() {
            table.new = false;
        }
    }
}
