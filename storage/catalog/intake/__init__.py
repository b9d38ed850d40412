"""What comes into the catalog: uploads unpacked within their budgets, metadata read into runs,
and the problems an admin registers for verification."""
