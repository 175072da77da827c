namespace Agentry.Tests.Infrastructure;

/// <summary>
/// The real servers the tests use, as started by scripts/services.sh. A missing server is a failure,
/// never a skip: run the tests with ./scripts/test.sh, which starts them.
/// </summary>
public static class TestServers
{
    public static string Postgres => Require("AGENTRY_TEST_POSTGRES", "PostgreSQL");

    public static string PostgresAdmin => Require("AGENTRY_TEST_POSTGRES_ADMIN", "PostgreSQL");

    public static string Redis => Require("AGENTRY_TEST_REDIS", "Redis");

    /// <summary>The shared RabbitMQ node (an amqp:// URI); tests isolate themselves by queue name.</summary>
    public static string RabbitMq => Require("AGENTRY_TEST_RABBITMQ", "RabbitMQ");

    public static string RedisServerBinary => Require("AGENTRY_REDIS_SERVER_BIN", "Redis");

    /// <summary>The directory of rabbitmq-server and rabbitmqctl, for tests that run a node of their own.</summary>
    public static string RabbitMqBinaries => Require("AGENTRY_RABBITMQ_BIN", "RabbitMQ");

    /// <summary>The directory of initdb and pg_ctl, for tests that run a PostgreSQL cluster of their own.</summary>
    public static string PostgresBinaries => Require("AGENTRY_POSTGRES_BIN", "PostgreSQL");

    private static string Require(string variable, string server) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"{variable} is not set, so the {server} server these tests need is missing. Run ./scripts/test.sh (it starts the servers), or eval \"$(scripts/services.sh env)\".");
}
