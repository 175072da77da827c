using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Agentry.Data.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class Usage : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "DailyTokenBudget",
                table: "workspaces",
                type: "bigint",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "DailyTokenBudget",
                table: "api_keys",
                type: "bigint",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "usage_records",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    WorkspaceId = table.Column<Guid>(type: "uuid", nullable: false),
                    At = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    Day = table.Column<DateOnly>(type: "date", nullable: false),
                    Model = table.Column<string>(type: "character varying(300)", maxLength: 300, nullable: false),
                    PrincipalKind = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: true),
                    PrincipalId = table.Column<Guid>(type: "uuid", nullable: true),
                    AgentId = table.Column<Guid>(type: "uuid", nullable: true),
                    PromptTokens = table.Column<long>(type: "bigint", nullable: false),
                    CompletionTokens = table.Column<long>(type: "bigint", nullable: false),
                    DurationMs = table.Column<long>(type: "bigint", nullable: false),
                    Cached = table.Column<bool>(type: "boolean", nullable: false),
                    Estimated = table.Column<bool>(type: "boolean", nullable: false),
                    Failed = table.Column<bool>(type: "boolean", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_usage_records", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_usage_records_PrincipalId_Day",
                table: "usage_records",
                columns: new[] { "PrincipalId", "Day" });

            migrationBuilder.CreateIndex(
                name: "IX_usage_records_WorkspaceId_Day",
                table: "usage_records",
                columns: new[] { "WorkspaceId", "Day" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "usage_records");

            migrationBuilder.DropColumn(
                name: "DailyTokenBudget",
                table: "workspaces");

            migrationBuilder.DropColumn(
                name: "DailyTokenBudget",
                table: "api_keys");
        }
    }
}
