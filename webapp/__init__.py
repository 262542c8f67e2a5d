"""DermaScan: a Litestar site that serves fcnn's skin-lesion model (``webapp.app:create_app``)."""
