# shop.example.ch - managed by hand, see wiki/Shop-Hosting
server {
    listen 80 default_server;
    listen [::]:80 default_server;
    server_name shop.example.ch www.shop.example.ch;

    location /.well-known/acme-challenge/ {
        root /var/www/letsencrypt;
    }

    location / {
        return 301 https://$host$request_uri;
    }
}

server {
    listen 443 ssl http2;
    listen [::]:443 ssl http2;
    server_name shop.example.ch;

    root /var/www/shop/public;
    index index.php;

    include snippets/ssl-shop.conf;

    # back office: office network and the admin password
    location /admin {
        allow 203.0.113.0/24;
        deny  all;
        auth_basic           "Shop admin";
        auth_basic_user_file /etc/nginx/.htpasswd-admin;
    }

    # PostFinance post-sale feedback (payment module callback)
    location /postfinance/ {
        include snippets/postfinance-allow.conf;
        deny all;
        try_files $uri /index.php?$query_string;
    }

    location / {
        try_files $uri $uri/ /index.php?$query_string;
    }

    location ~ \.php$ {
        include snippets/fastcgi-php.conf;
        fastcgi_pass unix:/run/php/php8.2-fpm.sock;
    }

    location ~ /\.(?!well-known) {
        deny all;
    }
}

server {
    listen 443 ssl;
    listen [::]:443 ssl;
    server_name staging.example.ch "~^preview-(?<branch>[a-z0-9-]+)\.example\.ch$";
    root /var/www/staging/public;
    include snippets/ssl-shop.conf;

    allow 10.8.0.0/16;
    allow 203.0.113.0/24;
    deny all;

    location / {
        try_files $uri $uri/ /index.php?$query_string;
    }
}
