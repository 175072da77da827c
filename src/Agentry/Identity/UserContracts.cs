using System.ComponentModel.DataAnnotations;

namespace Agentry.Identity;

public sealed record CreateUserRequest(
    [Required, EmailAddress, StringLength(User.EmailMaxLength)] string Email,
    [Required, StringLength(User.NameMaxLength, MinimumLength = 1)] string DisplayName,
    [Required, StringLength(256, MinimumLength = 12)] string Password,
    bool IsPlatformAdmin = false);

/// <summary>Fields left out (or null) keep their value.</summary>
public sealed record UpdateUserRequest(
    [StringLength(User.NameMaxLength, MinimumLength = 1)] string? DisplayName,
    [StringLength(256, MinimumLength = 12)] string? Password,
    bool? IsDisabled,
    bool? IsPlatformAdmin);

public sealed record UserResponse(Guid Id, string Email, string DisplayName, bool IsPlatformAdmin, bool IsDisabled, DateTime CreatedAt);

public sealed record SetMemberRequest([Required, AllowedValues(Roles.Owner, Roles.Admin, Roles.Member, Roles.Viewer)] string Role);

public sealed record MemberResponse(Guid UserId, string Email, string DisplayName, string Role, DateTime CreatedAt);

internal static class UserContracts
{
    public static UserResponse ToResponse(this User u) => new(u.Id, u.Email, u.DisplayName, u.IsPlatformAdmin, u.IsDisabled, u.CreatedAt);
}
