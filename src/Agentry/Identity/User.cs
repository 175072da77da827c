using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Agentry.Identity;

/// <summary>A person who signs in. Passwords are hashed by ASP.NET Core Identity's hasher (PBKDF2).</summary>
public sealed class User
{
    public const int EmailMaxLength = 254;
    public const int NameMaxLength = 100;

    public Guid Id { get; init; }
    public required string Email { get; set; }

    /// <summary>Upper-invariant email: the unique lookup key.</summary>
    public required string NormalizedEmail { get; set; }

    public required string DisplayName { get; set; }
    public string? PasswordHash { get; set; }

    /// <summary>Manages every workspace and user of this installation.</summary>
    public bool IsPlatformAdmin { get; set; }

    public bool IsDisabled { get; set; }
    public int AccessFailedCount { get; set; }
    public DateTime? LockoutEnd { get; set; }
    public DateTime CreatedAt { get; init; }

    public static string Normalize(string email) => email.Trim().ToUpperInvariant();
}

internal sealed class UserConfiguration : IEntityTypeConfiguration<User>
{
    public void Configure(EntityTypeBuilder<User> user)
    {
        user.ToTable("users");
        user.HasKey(u => u.Id);
        user.Property(u => u.Id).ValueGeneratedNever();
        user.Property(u => u.Email).HasMaxLength(User.EmailMaxLength);
        user.Property(u => u.NormalizedEmail).HasMaxLength(User.EmailMaxLength);
        user.Property(u => u.DisplayName).HasMaxLength(User.NameMaxLength);
        user.Property(u => u.PasswordHash).HasMaxLength(512);
        user.HasIndex(u => u.NormalizedEmail).IsUnique();
    }
}
